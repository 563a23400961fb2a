list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/covariance.cpp
  ${CMAKE_CURRENT_LIST_DIR}/diagonal_covariance.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dense_covariance.cpp
  ${CMAKE_CURRENT_LIST_DIR}/periodic_gaussian_covariance.cpp)
