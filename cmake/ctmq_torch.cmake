# LibTorch, CUDA and NCCL for ctmq: one place that finds them and says what it
# found. Two LibTorch builds are supported (docs/building.md):
#   - Debian's libtorch-dev (LibTorch 1.13, CPU), found in the default paths;
#   - PyTorch 2.x from PyPI (a CUDA build), found through
#     -DCMAKE_PREFIX_PATH="$(python -c 'import torch;print(torch.utils.cmake_prefix_path)')".
# Options (each AUTO, ON or OFF; ON makes a missing part a configure error,
# never a silent fallback):
#   CTMQ_CUDA  the CUDA code paths (CTMQ_WITH_CUDA); needs a CUDA LibTorch
#   CTMQ_NCCL  the NCCL communicator (CTMQ_WITH_NCCL); needs CTMQ_CUDA
# Defines the interface target ctmq_torch and CTMQ_HAVE_CUDA / CTMQ_HAVE_NCCL,
# CTMQ_NCCL_INCLUDE_DIR, CTMQ_NCCL_LIBRARY.

set(CTMQ_CUDA AUTO CACHE STRING "CUDA code paths: AUTO (on with a CUDA LibTorch), ON or OFF")
set(CTMQ_NCCL AUTO CACHE STRING "NCCL communicator: AUTO (on where CUDA is on and nccl.h is found), ON or OFF")
set_property(CACHE CTMQ_CUDA PROPERTY STRINGS AUTO ON OFF)
set_property(CACHE CTMQ_NCCL PROPERTY STRINGS AUTO ON OFF)
set(CTMQ_NCCL_ROOT "" CACHE PATH "prefix holding include/nccl.h and lib/libnccl.so* (default: the nvidia-nccl wheel beside PyTorch, then the CUDA toolkit)")
foreach(option CTMQ_CUDA CTMQ_NCCL)
  if(NOT ${option} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${option}=${${option}}: use AUTO, ON or OFF")
  endif()
endforeach()

# A CUDA LibTorch's CMake config looks for the toolkit; point it at the usual
# place when the user did not.
if(NOT CUDAToolkit_ROOT AND NOT DEFINED ENV{CUDAToolkit_ROOT} AND NOT DEFINED ENV{CUDA_HOME}
   AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
  # ctmq compiles no CUDA kernels of its own; name one architecture so that
  # PyTorch's config does not probe for a GPU.
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()

# TorchConfig.cmake searches the default library paths before its own lib/,
# so with Debian's libtorch-dev installed a PyPI config would link Debian's
# libtorch.so beside the wheel's headers. Put the prefix of a
# torch.utils.cmake_prefix_path entry (.../torch/share/cmake) first, so that
# its lib/ is searched before /usr/lib, and refuse any mix that remains.
foreach(entry IN LISTS CMAKE_PREFIX_PATH)
  if(EXISTS "${entry}/Torch/TorchConfig.cmake")
    get_filename_component(torch_prefix "${entry}/../.." ABSOLUTE)
    list(PREPEND CMAKE_PREFIX_PATH "${torch_prefix}")
    break()
  endif()
endforeach()
find_package(Torch REQUIRED)
# ctmq_torch_library_is_own(VAR): VAR is TRUE when TORCH_LIBRARY lies under
# TORCH_INSTALL_PREFIX (symbolic links resolved).
function(ctmq_torch_library_is_own var)
  get_filename_component(prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
  get_filename_component(library "${TORCH_LIBRARY}" REALPATH)
  string(FIND "${library}" "${prefix}/" position)
  if(position EQUAL 0)
    set(${var} TRUE PARENT_SCOPE)
  else()
    set(${var} FALSE PARENT_SCOPE)
  endif()
endfunction()
ctmq_torch_library_is_own(own)
if(NOT own)  # Torch_DIR given some other way: search its prefix first and retry
  list(PREPEND CMAKE_PREFIX_PATH "${TORCH_INSTALL_PREFIX}")
  foreach(var TORCH_LIBRARY c10_LIBRARY C10_CUDA_LIBRARY kineto_LIBRARY)
    unset(${var} CACHE)
  endforeach()
  find_package(Torch REQUIRED)
  ctmq_torch_library_is_own(own)
  if(NOT own)
    message(FATAL_ERROR "LibTorch's config at ${Torch_DIR} found its library at ${TORCH_LIBRARY}, "
                        "outside its own prefix ${TORCH_INSTALL_PREFIX}: two LibTorch installations are mixed. "
                        "Set -DTorch_DIR to the one you mean, in a fresh build directory.")
  endif()
endif()

if(TORCH_CUDA_LIBRARIES)
  set(CTMQ_TORCH_HAS_CUDA TRUE)
else()
  set(CTMQ_TORCH_HAS_CUDA FALSE)
endif()
if(CTMQ_CUDA STREQUAL "ON" AND NOT CTMQ_TORCH_HAS_CUDA)
  message(FATAL_ERROR "CTMQ_CUDA=ON but the LibTorch at ${TORCH_INSTALL_PREFIX} is a CPU build. "
                      "Point CMAKE_PREFIX_PATH at a CUDA PyTorch (bash pipeline/install-torch.sh), or use -DCTMQ_CUDA=AUTO.")
endif()
if(CTMQ_TORCH_HAS_CUDA AND NOT CTMQ_CUDA STREQUAL "OFF")
  set(CTMQ_HAVE_CUDA TRUE)
else()
  set(CTMQ_HAVE_CUDA FALSE)
endif()

# LibTorch's config exports its flags through TORCH_CXX_FLAGS (the ABI define)
# and TORCH_LIBRARIES; wrap them in one imported target.
add_library(ctmq_torch INTERFACE)
target_link_libraries(ctmq_torch INTERFACE ${TORCH_LIBRARIES})
separate_arguments(CTMQ_TORCH_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(ctmq_torch INTERFACE ${CTMQ_TORCH_FLAGS})
if(CTMQ_HAVE_CUDA)
  target_compile_definitions(ctmq_torch INTERFACE CTMQ_WITH_CUDA=1)
endif()
# LibTorch's CUDA libraries find their CUDA runtime through their own RUNPATH
# (the nvidia-* wheels); ctmq's programs must not need the driver
# (libcuda.so.1) to start, so that a CUDA build runs on CPU-only nodes too.
target_link_options(ctmq_torch INTERFACE "LINKER:--as-needed")
# A PyPI LibTorch loads the CUDA libraries of the nvidia-* wheels beside it
# (libtorch_cuda.so's own RPATH). ctmq's programs search those directories
# first too, so that a CUDA module's or toolkit's libcudart.so of another
# minor version is never loaded in their place.
if(CTMQ_TORCH_HAS_CUDA)
  file(GLOB wheel_library_dirs LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
  foreach(dir IN LISTS wheel_library_dirs)
    get_filename_component(dir "${dir}" REALPATH)
    target_link_options(ctmq_torch INTERFACE "LINKER:-rpath,${dir}")
  endforeach()
endif()

# NCCL: the wheel beside PyTorch first (the library PyTorch itself loads),
# then CTMQ_NCCL_ROOT, then the CUDA toolkit and the default paths.
set(CTMQ_HAVE_NCCL FALSE)
if(CTMQ_NCCL STREQUAL "ON" AND NOT CTMQ_HAVE_CUDA)
  message(FATAL_ERROR "CTMQ_NCCL=ON needs CUDA, which is off (LibTorch at ${TORCH_INSTALL_PREFIX}, CTMQ_CUDA=${CTMQ_CUDA})")
endif()
if(CTMQ_HAVE_CUDA AND NOT CTMQ_NCCL STREQUAL "OFF")
  set(nccl_hints ${CTMQ_NCCL_ROOT} "${TORCH_INSTALL_PREFIX}/../nvidia/nccl" ${CUDAToolkit_ROOT}
                 $ENV{NCCL_HOME} $ENV{NCCL_ROOT})
  find_path(CTMQ_NCCL_INCLUDE_DIR nccl.h HINTS ${nccl_hints} PATH_SUFFIXES include NO_DEFAULT_PATH)
  find_path(CTMQ_NCCL_INCLUDE_DIR nccl.h)
  find_library(CTMQ_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${nccl_hints}
               PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  find_library(CTMQ_NCCL_LIBRARY NAMES nccl libnccl.so.2)
  if(CTMQ_NCCL_INCLUDE_DIR AND CTMQ_NCCL_LIBRARY)
    set(CTMQ_HAVE_NCCL TRUE)
  elseif(CTMQ_NCCL STREQUAL "ON")
    message(FATAL_ERROR "CTMQ_NCCL=ON but NCCL was not found (nccl.h: ${CTMQ_NCCL_INCLUDE_DIR}, "
                        "libnccl: ${CTMQ_NCCL_LIBRARY}); set -DCTMQ_NCCL_ROOT=PREFIX (the prefix holding "
                        "include/nccl.h and lib/libnccl.so.2), or pip install nvidia-nccl-cu13 beside PyTorch")
  endif()
endif()

message(STATUS "ctmq: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}")
if(CTMQ_HAVE_CUDA)
  message(STATUS "ctmq: CUDA on (CTMQ_CUDA=${CTMQ_CUDA})")
elseif(CTMQ_TORCH_HAS_CUDA)
  message(STATUS "ctmq: CUDA off (CTMQ_CUDA=OFF; this LibTorch has CUDA)")
else()
  message(STATUS "ctmq: CUDA off (a CPU LibTorch)")
endif()
if(CTMQ_HAVE_NCCL)
  message(STATUS "ctmq: NCCL on (${CTMQ_NCCL_LIBRARY}, ${CTMQ_NCCL_INCLUDE_DIR}/nccl.h)")
else()
  message(STATUS "ctmq: NCCL off (CTMQ_NCCL=${CTMQ_NCCL}): GPU ranks communicate through MPI")
endif()
