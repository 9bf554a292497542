// pybind11 for the vision family: views in, GIL released around every kernel.
#include <algorithm>
#include <limits>

#include "bindings/common.h"
#include "bindings/plain_call.h"
#include "vision/batch_norm_api.h"
#include "vision/batch_norm_pool_api.h"
#include "vision/channel_shuffle_api.h"
#include "vision/conv_pool_api.h"
#include "vision/depthwise_api.h"
#include "vision/nms_api.h"
#include "vision/pointwise_api.h"
#include "vision/ps_roi_api.h"
#include "vision/shuffle_stage_api.h"

namespace py = pybind11;

namespace nimbleops {
namespace {
struct ShuffleStagePlan {
  std::vector<vision::ShuffleUnitViews> units;
};
}  // namespace

void bind_vision(py::module_& m) {
  m.def("nms_cpu", [](const View& boxes, const View& scores, std::optional<View> groups, double iou_threshold,
                      int64_t max_output, const View& keep) {
    py::gil_scoped_release nogil;
    return vision::cpu::nms(boxes, scores, groups, iou_threshold, max_output, keep);
  });

  py::class_<vision::ShuffleUnitViews>(m, "ShuffleUnit")
      .def(py::init([](int64_t stride, const View& pw1_weight, std::optional<View> pw1_bias, const View& dw_weight,
                       std::optional<View> dw_bias, const View& pw2_weight, std::optional<View> pw2_bias,
                       std::optional<View> branch1_dw_weight, std::optional<View> branch1_dw_bias,
                       std::optional<View> branch1_pw_weight, std::optional<View> branch1_pw_bias) {
             vision::ShuffleUnitViews u;
             u.stride = stride;
             u.pw1_weight = pw1_weight;
             u.pw1_bias = pw1_bias;
             u.dw_weight = dw_weight;
             u.dw_bias = dw_bias;
             u.pw2_weight = pw2_weight;
             u.pw2_bias = pw2_bias;
             u.branch1_dw_weight = branch1_dw_weight;
             u.branch1_dw_bias = branch1_dw_bias;
             u.branch1_pw_weight = branch1_pw_weight;
             u.branch1_pw_bias = branch1_pw_bias;
             return u;
           }),
           py::arg("stride"), py::arg("pw1_weight"), py::arg("pw1_bias"), py::arg("dw_weight"), py::arg("dw_bias"),
           py::arg("pw2_weight"), py::arg("pw2_bias"), py::arg("branch1_dw_weight"), py::arg("branch1_dw_bias"),
           py::arg("branch1_pw_weight"), py::arg("branch1_pw_bias"));
  // a stage's units, converted once and run on many inputs (each run checks them against x)
  py::class_<ShuffleStagePlan>(m, "ShuffleStagePlan")
      .def(py::init([](std::vector<vision::ShuffleUnitViews> units) { return ShuffleStagePlan{std::move(units)}; }),
           py::arg("units"))
      .def("shape", [](const ShuffleStagePlan& p, const View& x) { return vision::check_shufflenet_stage(x, p.units); },
           py::arg("x"))
      .def("run_cpu",
           [](const ShuffleStagePlan& p, const View& x, const View& out) {
             py::gil_scoped_release nogil;
             vision::cpu::shufflenet_stage(x, p.units, out);
           },
           py::arg("x"), py::arg("out"));

  py::class_<vision::ConvPoolViews>(m, "ConvPoolInputs")
      .def(py::init([](const View& x, const View& weight, std::optional<View> bias, int64_t stride, int64_t padding,
                       int64_t pool_kernel_size, int64_t pool_stride, int64_t pool_padding) {
             vision::ConvPoolViews v;
             v.x = x;
             v.weight = weight;
             v.bias = bias;
             v.stride = stride;
             v.padding = padding;
             v.pool_kernel_size = pool_kernel_size;
             v.pool_stride = pool_stride;
             v.pool_padding = pool_padding;
             return v;
           }),
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
           py::arg("pool_kernel_size"), py::arg("pool_stride"), py::arg("pool_padding"))
      .def_property_readonly("output_shape", &vision::check_conv_pool);
  m.def("conv_pool_forward_cpu", [](const vision::ConvPoolViews& v, const View& out) {
    py::gil_scoped_release nogil;
    vision::cpu::conv2d_relu_max_pool(v, out);
  });

  py::class_<vision::PsRoiViews>(m, "PsRoiInputs")
      .def(py::init([](const std::string& op, const View& input, const View& boxes, std::vector<int64_t> output_size,
                       double spatial_scale, int64_t sampling_ratio, bool aligned, bool deterministic,
                       uintptr_t stream) {
             NIMBLEOPS_CHECK(output_size.size() == 2, "internal: output_size pair expected");
             const auto kind = parse_enum<vision::PsRoiOp>(op,
                                                          {{"align_avg", vision::PsRoiOp::align_avg},
                                                           {"align_max", vision::PsRoiOp::align_max},
                                                           {"pool", vision::PsRoiOp::pool}},
                                                          "op");
             return vision::ps_roi_inputs(kind, input, boxes, output_size[0], output_size[1], spatial_scale,
                                          sampling_ratio, aligned, deterministic, stream);
           }),
           py::arg("op"), py::arg("input"), py::arg("boxes"), py::arg("output_size"), py::arg("spatial_scale"),
           py::arg("sampling_ratio"), py::arg("aligned"), py::arg("deterministic"), py::arg("stream"))
      .def_property_readonly("output_shape", [](const vision::PsRoiViews& v) {
        return std::vector<int64_t>{v.boxes.shape[0], v.C_out, v.pooled_h, v.pooled_w};
      })
      // The boxes' values checked on the host (batch indices, adaptive grid size): the CPU kernels
      // run this themselves; for CUDA boxes the Python wrapper passes a host copy before launch.
      .def("check_boxes", [](const vision::PsRoiViews& v, const View& host_boxes) {
        NIMBLEOPS_CHECK(host_boxes.device < 0 && host_boxes.is_contiguous() && host_boxes.dtype == DType::float64 &&
                            host_boxes.numel() == v.boxes.numel(),
                        "internal: check_boxes needs a contiguous float64 host copy of the boxes");
        vision::check_boxes(v, host_boxes.ptr<double>());
      });

#define NIMBLEOPS_BIND_PS_ROI(ns, suffix)                                                                        \
  m.def("ps_roi_forward_" suffix, [](const vision::PsRoiViews& v, const View& out) {                              \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::ps_roi_forward(v, out);                                                                          \
  });                                                                                                            \
  m.def("ps_roi_backward_" suffix, [](const vision::PsRoiViews& v, const View& grad_out, const View& grad_in) {   \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::ps_roi_backward(v, grad_out, grad_in);                                                           \
  });

  NIMBLEOPS_BIND_PS_ROI(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_PS_ROI(cuda, "cuda")
#endif

#define NIMBLEOPS_BIND_GATHER(ns, suffix)                                                                      \
  m.def("channel_gather_" suffix, [](const std::string& op, int64_t groups, std::vector<View> inputs,          \
                                     std::vector<View> outputs, uintptr_t stream) {                            \
    vision::ChannelGatherViews v;                                                                              \
    v.op = parse_enum<vision::ChannelOp>(                                                                      \
        op,                                                                                                    \
        {{"shuffle", vision::ChannelOp::shuffle},                                                              \
         {"concat_shuffle_split", vision::ChannelOp::concat_shuffle_split},                                    \
         {"concat_shuffle_split_backward", vision::ChannelOp::concat_shuffle_split_backward}},                 \
        "op");                                                                                                 \
    v.groups = groups;                                                                                         \
    v.inputs = std::move(inputs);                                                                              \
    v.outputs = std::move(outputs);                                                                            \
    v.stream = stream;                                                                                         \
    py::gil_scoped_release nogil;                                                                              \
    vision::ns::channel_gather(v);                                                                             \
  });

#define NIMBLEOPS_BIND_DEPTHWISE(ns, suffix)                                                                    \
  m.def("depthwise_forward_" suffix, [](const vision::DepthwiseViews& v, const View& out) {                      \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::depthwise_forward(v, out);                                                                       \
  });                                                                                                            \
  m.def("depthwise_backward_" suffix, [](const vision::DepthwiseViews& v, const View& grad_out,                  \
                                         std::optional<View> grad_x, std::optional<View> grad_w,                 \
                                         std::optional<View> grad_b) {                                           \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::depthwise_backward(v, grad_out, grad_x, grad_w, grad_b);                                         \
  });

  py::class_<vision::DepthwiseViews>(m, "DepthwiseInputs")
      .def(py::init([](const View& x, const View& weight, std::optional<View> bias, std::vector<int64_t> kernel,
                       std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                       uintptr_t stream) {
             vision::DepthwiseViews v;
             NIMBLEOPS_CHECK(kernel.size() == 2 && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
                             "internal: pairs expected");
             v.x = x;
             v.weight = weight;
             v.bias = bias;
             v.KH = kernel[0];
             v.KW = kernel[1];
             v.sh = stride[0];
             v.sw = stride[1];
             v.pad_h = padding[0];
             v.pad_w = padding[1];
             v.dh = dilation[0];
             v.dw = dilation[1];
             v.stream = stream;
             vision::check_depthwise(v);
             return v;
           }),
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("stream"))
      .def_property_readonly("output_shape", [](const vision::DepthwiseViews& v) {
        const vision::DepthwiseShape& s = v.shape;
        return std::vector<int64_t>{s.N, s.Cout, s.OH, s.OW};
      });

  NIMBLEOPS_BIND_DEPTHWISE(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_DEPTHWISE(cuda, "cuda")
#endif

  py::class_<vision::PointwiseViews>(m, "PointwiseInputs")
      .def(py::init([](const View& x, const View& weight, std::optional<View> bias, int64_t groups,
                       int64_t shuffle_groups, bool relu, uintptr_t stream) {
             vision::PointwiseViews v;
             v.x = x;
             v.weight = weight;
             v.bias = bias;
             v.groups = groups;
             v.shuffle_groups = shuffle_groups;
             v.relu = relu;
             v.stream = stream;
             vision::check_pointwise(v);
             return v;
           }),
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("groups"), py::arg("shuffle_groups"),
           py::arg("relu"), py::arg("stream"));

#define NIMBLEOPS_BIND_POINTWISE(ns, suffix)                                                                    \
  m.def("pointwise_forward_" suffix, [](const vision::PointwiseViews& v, const View& out) {                      \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::pointwise_forward(v, out);                                                                       \
  });                                                                                                            \
  m.def("pointwise_backward_" suffix, [](const vision::PointwiseViews& v, const View& grad_out,                  \
                                         std::optional<View> out, std::optional<View> grad_x,                    \
                                         std::optional<View> grad_w, std::optional<View> grad_b) {               \
    py::gil_scoped_release nogil;                                                                                \
    vision::ns::pointwise_backward(v, grad_out, out, grad_x, grad_w, grad_b);                                    \
  });

  NIMBLEOPS_BIND_POINTWISE(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_POINTWISE(cuda, "cuda")
#endif

  NIMBLEOPS_BIND_GATHER(cpu, "cpu")
#ifdef NIMBLEOPS_WITH_CUDA
  NIMBLEOPS_BIND_GATHER(cuda, "cuda")
#endif

  // The plain calls (bindings/plain_call.h) of channel_shuffle and pointwise_conv2d: an NCHW-
  // contiguous float image batch of numpy or plain CPU torch, its arguments of the same kind and
  // dtype, plain int arguments; the output, or None for any other call (the general path then
  // converts, checks and names the problem).
  m.def(
      "channel_shuffle_plain",
      [](py::handle x, py::handle groups) -> py::object {
        vision::ChannelGatherViews v;
        plain::Args args;
        // the views are read and made in place (a View copy allocates its shape and strides)
        v.inputs.resize(1);
        v.outputs.resize(1);
        View &xv = v.inputs[0], &out = v.outputs[0];
        if (!plain::read_int(groups.ptr(), 1, plain::kIntLimit, v.groups) || !args.read_image(x.ptr(), xv) ||
            xv.numel() == 0 || xv.shape[1] % v.groups != 0)
          return py::none();
        py::object o = args.empty_like(x.ptr(), xv, out);
        v.op = vision::ChannelOp::shuffle;
        v.stream = 0;
        {
          py::gil_scoped_release nogil;
          vision::cpu::channel_gather(v);
        }
        return o;
      },
      py::arg("x"), py::arg("groups"));
  m.def(
      "concat_shuffle_split_plain",
      [](py::handle a, py::handle b) -> py::object {
        vision::ChannelGatherViews v;
        plain::Args args;
        v.inputs.resize(2);  // read and made in place, as in channel_shuffle_plain
        v.outputs.resize(2);
        View &av = v.inputs[0], &bv = v.inputs[1], &out1 = v.outputs[0], &out2 = v.outputs[1];
        if (!args.read_image(a.ptr(), av) || !args.read_image(b.ptr(), av.dtype, bv) || av.numel() == 0 ||
            bv.numel() == 0 || av.is_contiguous() != bv.is_contiguous() || av.shape[0] != bv.shape[0] ||
            av.shape[2] != bv.shape[2] || av.shape[3] != bv.shape[3] || (av.shape[1] + bv.shape[1]) % 2 != 0)
          return py::none();
        const bool channels_last = !av.is_contiguous();
        const std::vector<int64_t> half = {av.shape[0], (av.shape[1] + bv.shape[1]) / 2, av.shape[2], av.shape[3]};
        // a ShuffleNetV2 stage's halves are of a's shape: torch's empty_like is the shorter call
        auto half_array = [&](View& out) {
          return half == av.shape ? args.empty_like(a.ptr(), av, out)
                                  : args.empty_image(half, av.dtype, channels_last, out);
        };
        py::object o1 = half_array(out1), o2 = half_array(out2);
        v.op = vision::ChannelOp::concat_shuffle_split;
        v.groups = 1;
        v.stream = 0;
        {
          py::gil_scoped_release nogil;
          vision::cpu::channel_gather(v);
        }
        return py::make_tuple(o1, o2);
      },
      py::arg("a"), py::arg("b"));
  m.def(
      "nms_plain",
      [](py::handle boxes, py::handle scores, py::handle groups, py::handle iou_threshold,
         py::handle max_output) -> py::object {
        plain::Args args;
        View b, s;
        std::optional<View> g;
        double iou;
        int64_t cap = -1;
        if (!plain::read_number(iou_threshold.ptr(), -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::infinity(), iou) ||
            !(max_output.is_none() || plain::read_int(max_output.ptr(), 0, plain::kIntLimit, cap)) ||
            !args.read_float(boxes.ptr(), b) || b.ndim() != 2 || b.shape[1] != 4 || b.shape[0] == 0 ||
            !args.read(scores.ptr(), b.dtype, s) || s.shape != std::vector<int64_t>{b.shape[0]} ||
            !args.read_like_if(!groups.is_none(), groups.ptr(), DType::int64, s, g))
          return py::none();
        std::vector<int64_t> kept(size_t(b.shape[0]));
        int64_t n;
        {
          py::gil_scoped_release nogil;
          n = vision::cpu::nms(b, s, g, iou, cap, contiguous_view(kept.data(), {b.shape[0]}));
        }
        View out;
        py::object o = args.empty({n}, DType::int64, out);
        std::copy(kept.begin(), kept.begin() + n, out.ptr<int64_t>());
        return o;
      },
      py::arg("boxes"), py::arg("scores"), py::arg("groups"), py::arg("iou_threshold"), py::arg("max_output"));
  m.def(
      "ps_roi_plain",
      [](const std::string& op, py::handle input, py::handle boxes, py::handle output_size, py::handle spatial_scale,
         py::handle sampling_ratio, py::handle aligned, py::handle deterministic) -> py::object {
        const auto kind = parse_enum<vision::PsRoiOp>(
            op, {{"align_avg", vision::PsRoiOp::align_avg}, {"align_max", vision::PsRoiOp::align_max},
                 {"pool", vision::PsRoiOp::pool}},
            "op");
        constexpr double inf = std::numeric_limits<double>::infinity();
        int64_t ph, pw, ratio;
        double scale;
        if (!plain::read_pair(output_size.ptr(), 1, ph, pw) ||
            !plain::read_number(spatial_scale.ptr(), -inf, inf, scale) ||
            !plain::read_int(sampling_ratio.ptr(), -plain::kIntLimit, plain::kIntLimit, ratio) ||
            (aligned.ptr() != Py_True && aligned.ptr() != Py_False) ||
            !(deterministic.is_none() || deterministic.ptr() == Py_True || deterministic.ptr() == Py_False))
          return py::none();
        plain::Args args;
        View x, b;
        if (!args.read_image(input.ptr(), x) || !args.read_float(boxes.ptr(), b) || b.ndim() != 2 || b.shape[1] != 5 ||
            b.shape[0] == 0)
          return py::none();
        std::vector<double> widened;  // float32 boxes as the kernel's float64 (exact)
        if (b.dtype == DType::float32) {
          const float* from = b.ptr<float>();
          widened.assign(from, from + b.numel());
          b = contiguous_view(widened.data(), {b.shape[0], 5});
        }
        vision::PsRoiViews v;
        if (!plain::accepted([&] {
              v = vision::ps_roi_inputs(kind, x, b, ph, pw, scale, ratio, aligned.ptr() == Py_True,
                                        deterministic.ptr() == Py_True, 0);
            }))
          return py::none();
        View out;
        py::object o = args.empty({b.shape[0], v.C_out, ph, pw}, x.dtype, out);
        {
          py::gil_scoped_release nogil;
          vision::cpu::ps_roi_forward(v, out);
        }
        return o;
      },
      py::arg("op"), py::arg("input"), py::arg("boxes"), py::arg("output_size"), py::arg("spatial_scale"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("deterministic"));
  m.def(
      "conv_pool_plain",
      [](py::handle x, py::handle weight, py::handle bias, py::handle stride, py::handle padding,
         py::handle pool_kernel_size, py::handle pool_stride, py::handle pool_padding) -> py::object {
        vision::ConvPoolViews v;
        plain::Args args;
        const int64_t lo = -plain::kIntLimit, hi = plain::kIntLimit;
        if (!plain::read_int(stride.ptr(), lo, hi, v.stride) || !plain::read_int(padding.ptr(), lo, hi, v.padding) ||
            !plain::read_int(pool_kernel_size.ptr(), lo, hi, v.pool_kernel_size) ||
            !plain::read_int(pool_stride.ptr(), lo, hi, v.pool_stride) ||
            !plain::read_int(pool_padding.ptr(), lo, hi, v.pool_padding) || !args.read_float(x.ptr(), v.x) ||
            v.x.ndim() != 4 || !args.read(weight.ptr(), v.x.dtype, v.weight) ||
            !args.read_optional(bias.ptr(), v.x.dtype, 1, v.bias))
          return py::none();
        std::vector<int64_t> shape;
        if (!plain::accepted([&] { shape = vision::check_conv_pool(v); })) return py::none();
        View out;
        py::object o = args.empty(shape, v.x.dtype, out);
        {
          py::gil_scoped_release nogil;
          vision::cpu::conv2d_relu_max_pool(v, out);
        }
        return o;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
      py::arg("pool_kernel_size"), py::arg("pool_stride"), py::arg("pool_padding"));
  m.def(
      "depthwise_plain",
      [](py::handle x, py::handle weight, py::handle bias, py::handle stride, py::handle padding,
         py::handle dilation) -> py::object {
        vision::DepthwiseViews v;
        plain::Args args;
        View out;
        if (!plain::read_pair(stride.ptr(), 1, v.sh, v.sw) || !plain::read_pair(padding.ptr(), 0, v.pad_h, v.pad_w) ||
            !plain::read_pair(dilation.ptr(), 1, v.dh, v.dw) || !args.read_image(x.ptr(), v.x) ||
            !args.read(weight.ptr(), v.x.dtype, v.weight) || v.weight.ndim() != 4)
          return py::none();
        v.KH = v.weight.shape[2];
        v.KW = v.weight.shape[3];
        v.stream = 0;
        if (!args.read_optional(bias.ptr(), v.x.dtype, 1, v.bias) ||
            !plain::accepted([&] { vision::check_depthwise(v); }))
          return py::none();
        const vision::DepthwiseShape& s = v.shape;
        py::object o = args.empty_image({s.N, s.Cout, s.OH, s.OW}, v.x.dtype, s.channels_last, out);
        {
          py::gil_scoped_release nogil;
          vision::cpu::depthwise_forward(v, out);
        }
        return o;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"));
  m.def(
      "pointwise_plain",
      [](py::handle x, py::handle weight, py::handle bias, py::handle groups, py::handle activation,
         py::handle shuffle_groups) -> py::object {
        vision::PointwiseViews v;
        v.shuffle_groups = 0;
        plain::Args args;
        View out;
        if (!plain::read_int(groups.ptr(), 1, plain::kIntLimit, v.groups) ||
            !(shuffle_groups.is_none() || plain::read_int(shuffle_groups.ptr(), 1, plain::kIntLimit, v.shuffle_groups)))
          return py::none();
        if (activation.is_none()) {
          v.relu = false;
        } else if (PyUnicode_Check(activation.ptr()) &&
                   PyUnicode_CompareWithASCIIString(activation.ptr(), "relu") == 0) {
          v.relu = true;
        } else {
          return py::none();
        }
        if (!args.read_float(x.ptr(), v.x) || v.x.ndim() != 4 || v.x.numel() == 0 ||
            !args.read(weight.ptr(), v.x.dtype, v.weight) || !(v.weight.ndim() == 2 || v.weight.ndim() == 4))
          return py::none();
        if (v.weight.ndim() == 4) {  // [Cout, Cin/groups, 1, 1] as [Cout, Cin/groups]
          if (v.weight.shape[2] != 1 || v.weight.shape[3] != 1) return py::none();
          v.weight.shape.resize(2);
          v.weight.strides = {v.weight.shape[1], 1};
        }
        v.stream = 0;
        if (!args.read_optional(bias.ptr(), v.x.dtype, 1, v.bias) ||
            !plain::accepted([&] { vision::check_pointwise(v); }))
          return py::none();
        const std::vector<int64_t> shape = {v.x.shape[0], v.weight.shape[0], v.x.shape[2], v.x.shape[3]};
        py::object o = shape == v.x.shape ? args.empty_like(x.ptr(), v.x, out) : args.empty(shape, v.x.dtype, out);
        {
          py::gil_scoped_release nogil;
          vision::cpu::pointwise_forward(v, out);
        }
        return o;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("groups"), py::arg("activation"),
      py::arg("shuffle_groups"));

  py::class_<vision::BatchNormViews>(m, "BatchNormInputs")
      .def(py::init([](const View& x, const View& weight, const View& bias, double eps, bool relu) {
             vision::BatchNormViews v;
             v.x = x;
             v.weight = weight;
             v.bias = bias;
             v.eps = eps;
             v.relu = relu;
             vision::check_batch_norm(v);
             return v;
           }),
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("relu"));
  m.def("batch_norm_forward_cpu", [](const vision::BatchNormViews& v, const View& out, const View& mean,
                                     const View& invstd) {
    py::gil_scoped_release nogil;
    vision::cpu::batch_norm_forward(v, out, mean, invstd);
  });
  m.def("batch_norm_backward_cpu", [](const vision::BatchNormViews& v, const View& grad_out, const View& out,
                                      const View& mean, const View& invstd, std::optional<View> grad_x,
                                      std::optional<View> grad_w, std::optional<View> grad_b) {
    py::gil_scoped_release nogil;
    vision::cpu::batch_norm_backward(v, grad_out, out, mean, invstd, grad_x, grad_w, grad_b);
  });

  // The batch norm's plain calls (bindings/plain_call.h). Forward: x [N, C, H, W] NCHW-contiguous
  // float32 / float64 with more than one value per channel, weight and bias [C] of its dtype, the
  // running statistics [C] of its dtype (updated in place) or both None, momentum in [0, 1], eps a
  // finite number >= 0, relu a bool: (y, mean, invstd). Backward: the forward's arrays and the
  // gradient of y (like x), and which of (grad_x, grad_weight, grad_bias) to compute: those, None
  // for the others. None for any other call. Inside an autograd.Function's forward and backward
  // (autograd off) they take tensors that require grad.
  m.def(
      "batch_norm_plain",
      [](py::handle x, py::handle weight, py::handle bias, py::handle running_mean, py::handle running_var,
         py::handle momentum, py::handle eps, py::handle relu) -> py::object {
        vision::BatchNormViews v;
        double mom;
        if (!plain::read_number(momentum.ptr(), 0.0, 1.0, mom) ||
            !plain::read_number(eps.ptr(), 0.0, std::numeric_limits<double>::max(), v.eps) ||
            (relu.ptr() != Py_True && relu.ptr() != Py_False))
          return py::none();
        v.relu = relu.ptr() == Py_True;
        plain::Args args;
        if (!args.read_float(x.ptr(), v.x) || v.x.ndim() != 4 || !args.read(weight.ptr(), v.x.dtype, v.weight) ||
            !args.read(bias.ptr(), v.x.dtype, v.bias) || !plain::accepted([&] { vision::check_batch_norm(v); }))
          return py::none();
        const int64_t C = v.shape.C;
        const bool track = !running_mean.is_none();
        View rm, rv;
        if (track ? !(args.read_table(running_mean.ptr(), rm) && args.read_table(running_var.ptr(), rv) &&
                      rm.dtype == v.x.dtype && rv.dtype == v.x.dtype && rm.shape == v.weight.shape &&
                      rv.shape == v.weight.shape)
                  : !running_var.is_none())
          return py::none();
        View y, mean, invstd;
        py::object y_out = args.empty_like(x.ptr(), v.x, y);
        py::object mean_out = args.empty({C}, v.x.dtype, mean);
        py::object invstd_out = args.empty({C}, v.x.dtype, invstd);
        {
          py::gil_scoped_release nogil;
          vision::cpu::batch_norm_forward(v, y, mean, invstd);
          if (track) vision::cpu::update_running_stats(v, mean, invstd, mom, rm, rv);
        }
        if (track) {
          args.bump_version(running_mean.ptr());
          args.bump_version(running_var.ptr());
        }
        return py::make_tuple(y_out, mean_out, invstd_out);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("momentum"), py::arg("eps"), py::arg("relu"));
  m.def(
      "batch_norm_backward_plain",
      [](py::handle grad, py::handle x, py::handle weight, py::handle bias, py::handle y, py::handle mean,
         py::handle invstd, py::handle eps, py::handle relu, bool need_x, bool need_w, bool need_b) -> py::object {
        vision::BatchNormViews v;
        if (!plain::read_number(eps.ptr(), 0.0, std::numeric_limits<double>::max(), v.eps) ||
            (relu.ptr() != Py_True && relu.ptr() != Py_False))
          return py::none();
        v.relu = relu.ptr() == Py_True;
        plain::Args args;
        View g, out, mu, is;
        if (!args.read_float(x.ptr(), v.x) || v.x.ndim() != 4 || !args.read(weight.ptr(), v.x.dtype, v.weight) ||
            !args.read(bias.ptr(), v.x.dtype, v.bias) || !plain::accepted([&] { vision::check_batch_norm(v); }) ||
            !args.read_like(grad.ptr(), v.x.dtype, v.x, g) || !args.read_like(y.ptr(), v.x.dtype, v.x, out) ||
            !args.read_like(mean.ptr(), v.x.dtype, v.weight, mu) ||
            !args.read_like(invstd.ptr(), v.x.dtype, v.weight, is))
          return py::none();
        std::optional<View> gx, gw, gb;
        py::object gx_out = need_x ? args.empty_like(x.ptr(), v.x, gx.emplace()) : py::none();
        py::object gw_out = need_w ? args.empty_like(weight.ptr(), v.weight, gw.emplace()) : py::none();
        py::object gb_out = need_b ? args.empty_like(bias.ptr(), v.bias, gb.emplace()) : py::none();
        {
          py::gil_scoped_release nogil;
          vision::cpu::batch_norm_backward(v, g, out, mu, is, gx, gw, gb);
        }
        return py::make_tuple(gx_out, gw_out, gb_out);
      },
      py::arg("grad"), py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("mean"),
      py::arg("invstd"), py::arg("eps"), py::arg("relu"), py::arg("need_x"), py::arg("need_w"), py::arg("need_b"));

  py::class_<vision::BatchNormPoolViews>(m, "BatchNormPoolInputs")
      .def(py::init([](const View& x, const View& weight, const View& bias, double eps, int64_t kernel,
                       int64_t stride, int64_t padding) {
             vision::BatchNormPoolViews v;
             v.x = x;
             v.weight = weight;
             v.bias = bias;
             v.eps = eps;
             v.kernel = kernel;
             v.stride = stride;
             v.padding = padding;
             vision::check_batch_norm_pool(v);
             return v;
           }),
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("kernel"), py::arg("stride"),
           py::arg("padding"))
      .def_property_readonly("output_shape", [](const vision::BatchNormPoolViews& v) {
        const vision::BatchNormPoolShape& s = v.shape;
        return std::vector<int64_t>{s.N, s.C, s.OH, s.OW};
      });
  m.def("batch_norm_pool_forward_cpu", [](const vision::BatchNormPoolViews& v, const View& out, const View& index,
                                          const View& mean, const View& invstd) {
    py::gil_scoped_release nogil;
    vision::cpu::batch_norm_pool_forward(v, out, index, mean, invstd);
  });
  m.def("batch_norm_pool_backward_cpu", [](const vision::BatchNormPoolViews& v, const View& grad_out, const View& out,
                                           const View& index, const View& mean, const View& invstd,
                                           std::optional<View> grad_x, std::optional<View> grad_w,
                                           std::optional<View> grad_b) {
    py::gil_scoped_release nogil;
    vision::cpu::batch_norm_pool_backward(v, grad_out, out, index, mean, invstd, grad_x, grad_w, grad_b);
  });
}

}  // namespace nimbleops
