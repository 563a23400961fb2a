list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/linearization_checks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/covariance_checks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/statistics.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ecdf_band.cpp
  ${CMAKE_CURRENT_LIST_DIR}/posterior_agreement.cpp
  ${CMAKE_CURRENT_LIST_DIR}/adjoint_calibration.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sbc.cpp
  ${CMAKE_CURRENT_LIST_DIR}/promotion.cpp
  ${CMAKE_CURRENT_LIST_DIR}/emulator_gate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/analysis_comparison.cpp)
