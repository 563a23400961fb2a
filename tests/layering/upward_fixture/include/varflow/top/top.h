#pragma once
#include "varflow/base/base.h"
