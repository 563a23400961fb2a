list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/linearization_checks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/covariance_checks.cpp)
