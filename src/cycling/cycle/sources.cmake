list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/artifacts.cpp
  ${CMAKE_CURRENT_LIST_DIR}/predictor_step.cpp
  ${CMAKE_CURRENT_LIST_DIR}/six_step.cpp)
