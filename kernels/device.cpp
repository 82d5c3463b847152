#include "kernels/device.h"

#include <stdexcept>
#include <string>

#if RAPIDNII_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace rapidnii::kernels {

bool cuda_available() {
#if RAPIDNII_HAVE_CUDA
  // Function-local static: initialised exactly once, thread-safe (C++11).
  static const bool available = cuda_backend::device_count() > 0;
  return available;
#else
  return false;
#endif
}

Device resolve_device(Device requested) {
  switch (requested) {
    case Device::Cpu:
      return Device::Cpu;
    case Device::Auto:
      return cuda_available() ? Device::Cuda : Device::Cpu;
    case Device::Cuda:
      if (cuda_available()) return Device::Cuda;
#if RAPIDNII_HAVE_CUDA
      throw std::runtime_error(
          "CUDA device requested but no usable CUDA device was found "
          "(no GPU, or the NVIDIA driver is missing or too old); use --device cpu or auto");
#else
      throw std::runtime_error(
          "CUDA device requested but this rapidnii build has no CUDA support; "
          "use --device cpu or auto");
#endif
  }
  throw std::invalid_argument("resolve_device: invalid Device value");
}

const char* device_name(Device d) {
  switch (d) {
    case Device::Auto:
      return "auto";
    case Device::Cpu:
      return "cpu";
    case Device::Cuda:
      return "cuda";
  }
  return "unknown";
}

Device parse_device(std::string_view name) {
  if (name == "auto") return Device::Auto;
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  throw std::invalid_argument("unknown device '" + std::string(name) +
                              "' (expected auto, cpu or cuda)");
}

}  // namespace rapidnii::kernels
