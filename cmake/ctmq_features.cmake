# The optional parts of ctmq that a GPU image or a cluster may lack, each an
# AUTO/ON/OFF cache option (AUTO: on where its package is found; ON: a missing
# package is a configure error; OFF: left out). A part left out compiles its
# *_unavailable.cc instead, whose functions throw one clear error naming the
# option and the package (src/ctmq/common/build_features.h).
#   CTMQ_JPEG         JPEG image folders and encoded shards (libjpeg-turbo's TurboJPEG)
#   CTMQ_SWSCALE      image resizing for image folders (FFmpeg's libswscale, libavutil)
#   CTMQ_TENSORBOARD  TensorBoard event files ([train] tensorboard; Protocol Buffers)
# Sets CTMQ_BUILT_<PART> (true/false, for build_config.h) and
# CTMQ_EXCLUDED_SOURCES (the file names ctmq_layer() leaves out).
# REQUIRES: cmake/ctmq_torch.cmake was included (CUDA and NCCL).

set(CTMQ_EXCLUDED_SOURCES "")

# ctmq_optional_part(NAME FOUND SOURCE PACKAGE): decides part NAME from
# CTMQ_<NAME> and FOUND, prints one status line, and excludes SOURCE.cc or
# SOURCE_unavailable.cc.
function(ctmq_optional_part name found source package)
  set(option CTMQ_${name})
  if(${option} STREQUAL "ON" AND NOT found)
    message(FATAL_ERROR "${option}=ON but ${package} was not found; install it or set -D${option}=OFF")
  endif()
  if(found AND NOT ${option} STREQUAL "OFF")
    set(on TRUE)
    message(STATUS "ctmq: ${name} on (${package})")
    list(APPEND CTMQ_EXCLUDED_SOURCES ${source}_unavailable.cc)
  else()
    set(on FALSE)
    message(STATUS "ctmq: ${name} off (${option}=${${option}}): using it at run time is an error naming ${package}")
    list(APPEND CTMQ_EXCLUDED_SOURCES ${source}.cc)
  endif()
  set(CTMQ_HAVE_${name} ${on} PARENT_SCOPE)
  set(CTMQ_EXCLUDED_SOURCES ${CTMQ_EXCLUDED_SOURCES} PARENT_SCOPE)
endfunction()

foreach(part JPEG SWSCALE TENSORBOARD)
  set(CTMQ_${part} AUTO CACHE STRING "AUTO (on where found), ON or OFF")
  set_property(CACHE CTMQ_${part} PROPERTY STRINGS AUTO ON OFF)
  if(NOT CTMQ_${part} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "CTMQ_${part}=${CTMQ_${part}}: use AUTO, ON or OFF")
  endif()
endforeach()

# JPEG: libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev).
set(found FALSE)
if(NOT CTMQ_JPEG STREQUAL "OFF")
  find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h)
  find_library(TURBOJPEG_LIBRARY turbojpeg)
  if(TURBOJPEG_INCLUDE_DIR AND TURBOJPEG_LIBRARY)
    set(found TRUE)
  endif()
endif()
ctmq_optional_part(JPEG "${found}" jpeg_image "libjpeg-turbo's TurboJPEG, Debian libturbojpeg0-dev")
add_library(ctmq_turbojpeg INTERFACE)
if(CTMQ_HAVE_JPEG)
  target_include_directories(ctmq_turbojpeg INTERFACE ${TURBOJPEG_INCLUDE_DIR})
  target_link_libraries(ctmq_turbojpeg INTERFACE ${TURBOJPEG_LIBRARY})
endif()

# Resizing: FFmpeg's libswscale and libavutil (Debian: libswscale-dev).
set(found FALSE)
add_library(ctmq_swscale INTERFACE)
if(NOT CTMQ_SWSCALE STREQUAL "OFF")
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(SWSCALE QUIET IMPORTED_TARGET libswscale libavutil)
    if(SWSCALE_FOUND)
      set(found TRUE)
    endif()
  endif()
endif()
ctmq_optional_part(SWSCALE "${found}" image_resize "FFmpeg's libswscale and libavutil, Debian libswscale-dev")
if(CTMQ_HAVE_SWSCALE)
  target_link_libraries(ctmq_swscale INTERFACE PkgConfig::SWSCALE)
endif()

# TensorBoard event files: Protocol Buffers (Debian: libprotobuf-dev, protobuf-compiler).
set(found FALSE)
if(NOT CTMQ_TENSORBOARD STREQUAL "OFF")
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND AND Protobuf_PROTOC_EXECUTABLE)
    set(found TRUE)
  endif()
endif()
ctmq_optional_part(TENSORBOARD "${found}" event_file_writer
                   "Protocol Buffers, Debian libprotobuf-dev protobuf-compiler")

foreach(part CUDA NCCL JPEG SWSCALE TENSORBOARD)
  if(CTMQ_HAVE_${part})
    set(CTMQ_BUILT_${part} true)
  else()
    set(CTMQ_BUILT_${part} false)
  endif()
endforeach()
