list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/spline.cpp)
list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/problems.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gaussian_head.cpp
  ${CMAKE_CURRENT_LIST_DIR}/flow_head.cpp
  ${CMAKE_CURRENT_LIST_DIR}/score_head.cpp)
  list(APPEND VARFLOW_SOURCES ${CMAKE_CURRENT_LIST_DIR}/amortized_posterior.cpp)
