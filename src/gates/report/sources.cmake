list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/oracles.cpp
  ${CMAKE_CURRENT_LIST_DIR}/validate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/report_writer.cpp)
