# A two-layer tree with one planted upward include (tests/layering/CMakeLists.txt).
set(VARFLOW_LAYERS low high)
set(VARFLOW_LAYER_low base)
set(VARFLOW_LAYER_high top)
