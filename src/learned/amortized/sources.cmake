list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/spline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/problems.cpp
  ${CMAKE_CURRENT_LIST_DIR}/head.cpp
  ${CMAKE_CURRENT_LIST_DIR}/head_registry.cpp
  ${CMAKE_CURRENT_LIST_DIR}/head_check.cpp
  ${CMAKE_CURRENT_LIST_DIR}/amortized_posterior.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model_file.cpp)
# One source per head, <name>_head.cpp, registered in head_registry.cpp: picked up by name, so that a
# new head needs no line here (design/architecture.md, "Adding a head").
file(GLOB VARFLOW_AMORTIZED_HEAD_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_head.cpp)
list(APPEND VARFLOW_SOURCES ${VARFLOW_AMORTIZED_HEAD_SOURCES})
