list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/posterior.cpp
  ${CMAKE_CURRENT_LIST_DIR}/low_rank_covariance.cpp)
