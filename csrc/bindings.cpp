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

template <class T>
const void* ptr(T v) { return reinterpret_cast<const void*>(static_cast<uintptr_t>(v)); }

// The problem a Python call describes: sizes, addresses (integers) and row pitches. Workspace
// and stream belong to one launch and are given to run() instead.
GemmArgs make_problem(int m, int n, int k, int group_size, uintptr_t x, uintptr_t w, uintptr_t scales,
                      uintptr_t zeros, uintptr_t bias, uintptr_t out, int sm_count, int64_t ld_out,
                      int64_t ld_scales) {
  GemmArgs a;
  a.m = m; a.n = n; a.k = k; a.group_size = group_size;
  a.x = ptr(x); a.w = ptr(w); a.scales = ptr(scales); a.zeros = ptr(zeros); a.bias = ptr(bias);
  a.out = const_cast<void*>(ptr(out));
  a.sm_count = sm_count;
  a.ld_out = ld_out;
  a.ld_scales = ld_scales;
  return a;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "w4a16_build compiled kernels (thin binding over the generated registry)";

  m.def("list_kernels", [] {
    py::list out;
    for (const KernelEntry* e = w4a16::registry_begin(); e != w4a16::registry_end(); ++e) out.append(e->name);
    return out;
  }, "Names of the compiled kernels, in name order (the generator's model parses each into its configuration).");

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

  py::class_<GemmArgs>(m, "Problem", "One GEMM problem (csrc/w4a16/gemm_args.h): sizes, device addresses "
                                     "as integers (0 = none) and row pitches (0 = n).")
      .def(py::init(&make_problem), py::kw_only(), py::arg("m"), py::arg("n"), py::arg("k"),
           py::arg("group_size"), py::arg("x") = 0, py::arg("w") = 0, py::arg("scales") = 0, py::arg("zeros") = 0,
           py::arg("bias") = 0, py::arg("out") = 0, py::arg("sm_count") = 0, py::arg("ld_out") = 0,
           py::arg("ld_scales") = 0)
      .def_readonly("m", &GemmArgs::m)
      .def_readonly("n", &GemmArgs::n)
      .def_readonly("k", &GemmArgs::k)
      .def_readonly("group_size", &GemmArgs::group_size);

  m.def("can_implement", [](const std::string& name, const GemmArgs& p) {
    return static_cast<int>(lookup(name).can_implement(p));
  }, py::arg("name"), py::arg("problem"),
        "Status code (0 = success) of the kernel's can_implement; addresses only matter for alignment.");

  m.def("workspace_size", [](const std::string& name, const GemmArgs& p) {
    return lookup(name).workspace_size(p);
  }, py::arg("name"), py::arg("problem"), "Workspace bytes the kernel needs for a problem.");

  m.def("run", [](const std::string& name, const GemmArgs& p, uintptr_t workspace, size_t workspace_bytes,
                  uintptr_t stream) {
    const KernelEntry& e = lookup(name);
    GemmArgs a = p;
    a.workspace = const_cast<void*>(ptr(workspace));
    a.workspace_bytes = workspace_bytes;
    a.stream = reinterpret_cast<cudaStream_t>(stream);
    py::gil_scoped_release release;
    return static_cast<int>(e.run(a));
  }, py::arg("name"), py::arg("problem"), py::arg("workspace") = 0, py::arg("workspace_bytes") = 0,
        py::arg("stream") = 0, "Launch the kernel on a stream (no allocation, no synchronization). Returns a status code.");
}
