#pragma once
#include "varflow/top/top.h"  // planted: base (low) reaches up into top (high)
