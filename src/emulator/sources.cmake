list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/stencil_emulator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/emulator_gate.cpp)
