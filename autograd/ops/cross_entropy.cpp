// autograd/ops/cross_entropy.cpp: the classification loss, mean softmax cross-entropy against integer labels.
//
//   logits (N, C) f32/f64, labels (N) i64 in [0, C)  ->  L = (1/N) sum_r -log softmax(logits[r])_{labels[r]}
//   dL/dlogits[r, j] = (softmax(logits[r])_j - [j == labels[r]]) / N
// One fused op rather than log_softmax + a gather + mean: one pass forward, one backward, and no (N, C)
// intermediate kept for the backward beyond the logits themselves and one log-sum-exp per row
// (kernels/cross_entropy.h). Labels are not differentiable; each is checked on the host before any kernel
// runs, and a bad one is named with its row.
#include "kernels/cross_entropy.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_float("cross_entropy", logits);
  SANF_CHECK(logits.dim() == 2 && logits.size(0) > 0 && logits.size(1) > 0,
             "[cross_entropy] logits must be (N, C) with N, C > 0, got ", shape_str(logits.shape()));
  SANF_CHECK(labels.defined(), "[cross_entropy] undefined labels");
  const int64_t N = logits.size(0), C = logits.size(1);
  SANF_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1 && labels.numel() == N,
             "[cross_entropy] labels must be (N) i64 with N = ", N, " (the logits' rows), got ", labels.info());

  Tensor host = labels.device() == Device::CPU ? dense(labels) : dense(labels).copy_to_device(Device::CPU);
  const int64_t* lv = host.data<int64_t>();
  for (int64_t r = 0; r < N; ++r)
    SANF_CHECK(lv[r] >= 0 && lv[r] < C, "[cross_entropy] label ", lv[r], " (row ", r, ") is out of range for ", C,
               " classes (logits ", shape_str(logits.shape()), ")");
  Tensor lab = logits.device() == Device::CPU       ? host
               : labels.device() == logits.device() ? dense(labels)
                                                    : host.copy_to_device(logits.device());

  Tensor x = dense(logits);
  Tensor loss = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({N}, logits.dtype(), logits.device());
  kernels::cross_entropy(x, lab, loss, lse, N, C);
  Tensor out = mean(loss);  // loss needs no grad: nothing is recorded here, the node below is the op's own
  return record("cross_entropy", out, {logits},
                [x = detach(x), lab, lse, N, C](const Tensor& g, const std::vector<bool>&) {
                  Tensor dx = Tensor::empty({N, C}, x.dtype(), x.device());
                  kernels::cross_entropy_backward(x, lab, lse, dense(g), dx, N, C);
                  return std::vector<Tensor>{dx};
                });
}

}  // namespace sanf
