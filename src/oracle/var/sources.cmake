list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/window.cpp
  ${CMAKE_CURRENT_LIST_DIR}/summary.cpp
  ${CMAKE_CURRENT_LIST_DIR}/block_diagonal_covariance.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cost.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lanczos.cpp)
list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/gauss_newton.cpp
  ${CMAKE_CURRENT_LIST_DIR}/strong_4dvar.cpp)
list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/least_squares_check.cpp
  ${CMAKE_CURRENT_LIST_DIR}/laplace.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sensitivity.cpp
  ${CMAKE_CURRENT_LIST_DIR}/exact_sensitivity.cpp)
