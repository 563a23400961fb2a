#include "varflow/base/base.h"
#include "../high/top/private.h"  // planted: a private header of another module
