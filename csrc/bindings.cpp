// The Python binding: thin on purpose. It maps kernel names to registry
// entries and passes raw device pointers, sizes and a stream handle through;
// every check a user needs (dtypes, devices, shapes) lives in Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "w4a16/registry.h"

namespace py = pybind11;
using w4a16::GemmArgs;
using w4a16::KernelEntry;

namespace {

const std::unordered_map<std::string, const KernelEntry*>& by_name() {
  static const auto* table = [] {
    auto* t = new std::unordered_map<std::string, const KernelEntry*>();
    for (const KernelEntry* e = w4a16::registry_begin(); e != w4a16::registry_end(); ++e) {
      t->emplace(e->name, e);
    }
    return t;
  }();
  return *table;
}

const KernelEntry& lookup(const std::string& name) {
  auto it = by_name().find(name);
  if (it == by_name().end()) throw py::key_error("no compiled kernel named '" + name + "'");
  return *it->second;
}

py::dict config_dict(const KernelEntry& e) {
  py::dict d;
  d["name"] = e.name;
  d["family"] = e.config.family;
  d["dtype"] = e.config.dtype;
  d["mode"] = e.config.mode;
  d["tile_rows"] = e.config.tile_rows;
  d["tile_tokens"] = e.config.tile_tokens;
  d["tile_k"] = e.config.tile_k;
  d["cluster_m"] = e.config.cluster_m;
  d["cluster_n"] = e.config.cluster_n;
  d["schedule"] = e.config.schedule;
  d["scheduler"] = e.config.scheduler;
  d["max_m"] = e.config.max_m;
  d["stages"] = e.config.stages;
  return d;
}

template <class T>
const void* ptr(T v) { return reinterpret_cast<const void*>(static_cast<uintptr_t>(v)); }

GemmArgs make_args(int m, int n, int k, int group_size, uintptr_t x, uintptr_t w, uintptr_t scales,
                   uintptr_t zeros, uintptr_t bias, uintptr_t out, uintptr_t workspace,
                   size_t workspace_bytes, uintptr_t stream, int sm_count, int64_t ld_out,
                   int64_t ld_scales) {
  GemmArgs a;
  a.ld_out = ld_out;
  a.ld_scales = ld_scales;
  a.m = m; a.n = n; a.k = k; a.group_size = group_size;
  a.x = ptr(x); a.w = ptr(w); a.scales = ptr(scales); a.zeros = ptr(zeros); a.bias = ptr(bias);
  a.out = const_cast<void*>(ptr(out));
  a.workspace = const_cast<void*>(ptr(workspace));
  a.workspace_bytes = workspace_bytes;
  a.stream = reinterpret_cast<cudaStream_t>(stream);
  a.sm_count = sm_count;
  return a;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "w4a16_build compiled kernels (thin binding over the generated registry)";

  m.def("list_kernels", [] {
    py::list out;
    for (const KernelEntry* e = w4a16::registry_begin(); e != w4a16::registry_end(); ++e) {
      out.append(config_dict(*e));
    }
    return out;
  }, "Name and parsed configuration of every compiled kernel, in name order.");

  m.def("build_info", [] {
    py::dict d;
    d["manifest"] = w4a16::manifest_name();
    d["manifest_sha256"] = w4a16::manifest_sha256();
    d["cuda_archs"] = W4A16_CUDA_ARCHS;        // string literals defined by CMakeLists.txt
    d["cutlass_version"] = W4A16_CUTLASS_VERSION;
    d["nvcc_version"] = W4A16_NVCC_VERSION;
    return d;
  }, "Facts fixed when the extension was built.");

  m.def("status_string", [](int s) { return std::string(w4a16::status_string(static_cast<w4a16::Status>(s))); });
  m.def("last_launch_error", [] { return std::string(w4a16::last_launch_error()); },
        "The CUDA error of this thread's last refused launch.");

  // Problem arguments shared by the three calls below.
#define W4A16_PROBLEM_ARGS py::arg("name"), py::arg("m"), py::arg("n"), py::arg("k"), \
    py::arg("group_size"), py::arg("x") = 0, py::arg("w") = 0, py::arg("scales") = 0,      \
    py::arg("zeros") = 0, py::arg("bias") = 0, py::arg("out") = 0, py::arg("sm_count") = 0,        \
    py::arg("ld_out") = 0, py::arg("ld_scales") = 0

  m.def("can_implement",
        [](const std::string& name, int mm, int n, int k, int g, uintptr_t x, uintptr_t w,
           uintptr_t s, uintptr_t z, uintptr_t b, uintptr_t o, int sm_count, int64_t ldo, int64_t lds) {
          const KernelEntry& e = lookup(name);
          return static_cast<int>(
              e.can_implement(make_args(mm, n, k, g, x, w, s, z, b, o, 0, 0, 0, sm_count, ldo, lds)));
        }, W4A16_PROBLEM_ARGS,
        "Status code (0 = success) of the kernel's can_implement for a problem; pointers only matter for alignment.");

  m.def("workspace_size",
        [](const std::string& name, int mm, int n, int k, int g, uintptr_t x, uintptr_t w,
           uintptr_t s, uintptr_t z, uintptr_t b, uintptr_t o, int sm_count, int64_t ldo, int64_t lds) {
          const KernelEntry& e = lookup(name);
          return e.workspace_size(make_args(mm, n, k, g, x, w, s, z, b, o, 0, 0, 0, sm_count, ldo, lds));
        }, W4A16_PROBLEM_ARGS, "Workspace bytes the kernel needs for a problem.");

  m.def("run",
        [](const std::string& name, int mm, int n, int k, int g, uintptr_t x, uintptr_t w,
           uintptr_t s, uintptr_t z, uintptr_t b, uintptr_t o, int sm_count, int64_t ldo, int64_t lds,
           uintptr_t ws, size_t ws_bytes, uintptr_t stream) {
          const KernelEntry& e = lookup(name);
          GemmArgs a = make_args(mm, n, k, g, x, w, s, z, b, o, ws, ws_bytes, stream, sm_count, ldo, lds);
          py::gil_scoped_release release;
          return static_cast<int>(e.run(a));
        }, W4A16_PROBLEM_ARGS, py::arg("workspace") = 0, py::arg("workspace_bytes") = 0,
        py::arg("stream") = 0,
        "Launch the kernel on a stream (no allocation, no synchronization). Returns a status code.");
#undef W4A16_PROBLEM_ARGS
}
