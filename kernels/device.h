// Which executor runs the voxel kernels: the CPU (oneTBB) or a CUDA device.
#pragma once
#include <string_view>

namespace rapidnii::kernels {

enum class Device { Auto, Cpu, Cuda };

// True when this build has the CUDA executor and at least one CUDA device is
// usable. cudaGetDeviceCount is called once (thread-safe) and the answer cached;
// any failure (no driver, no device, built without CUDA) yields false.
bool cuda_available();

// Auto -> Cuda when cuda_available(), else Cpu. Cpu -> Cpu.
// Cuda -> Cuda, or std::runtime_error when CUDA is not available.
Device resolve_device(Device requested);

// "auto", "cpu" or "cuda".
const char* device_name(Device d);

// Inverse of device_name: exactly "auto", "cpu" or "cuda"; anything else
// throws std::invalid_argument.
Device parse_device(std::string_view name);

}  // namespace rapidnii::kernels
