list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/atomic_file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/netcdf_file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_reader.cpp)
