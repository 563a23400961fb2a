list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/twin_experiment.cpp
  ${CMAKE_CURRENT_LIST_DIR}/experiment_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/experiment_io.cpp)
