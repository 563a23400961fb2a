list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trajectory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rk4_model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lorenz63.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lorenz96.cpp
  ${CMAKE_CURRENT_LIST_DIR}/linear_model.cpp)
