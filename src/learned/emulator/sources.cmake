list(APPEND VARFLOW_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/product_layer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stencil_emulator.cpp)
