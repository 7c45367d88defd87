// Precompiled header: LibTorch and the standard headers most files use.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
