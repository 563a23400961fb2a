list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/observation_operator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/observations.cpp
  ${CMAKE_CURRENT_LIST_DIR}/operators.cpp)
