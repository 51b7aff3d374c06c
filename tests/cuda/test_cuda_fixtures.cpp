// tests/cuda/test_cuda_fixtures.cpp: the PyTorch fixtures on the device: the ViT (forward and gradients,
// f32 and f64), the flow (forward and gradients, three configurations) and Adam (the fused kernel), each
// the CPU test's own check run on CUDA (tests/vit/vit_golden_check.h, tests/flows/flow_fixture_check.h,
// tests/nn/adam_fixture_check.h), with the same tolerances.
#include "tests/cuda/parity.h"
#include "tests/flows/flow_fixture_check.h"
#include "tests/nn/adam_fixture_check.h"
#include "tests/vit/vit_golden_check.h"

using namespace sanf;

TEST_CASE("cuda fixtures: the ViT matches PyTorch on the device (forward and backward, f32 and f64)") {
  SANF_SKIP_WITHOUT_CUDA();
  testing::check_vit_golden(Device::CUDA);
}

TEST_CASE("cuda fixtures: the flow matches the PyTorch reference on the device (forward and gradients)") {
  SANF_SKIP_WITHOUT_CUDA();
  testing::check_flow_fixture(Device::CUDA);
}

TEST_CASE("cuda fixtures: Adam on the device matches torch.optim.Adam over 5 steps") {
  SANF_SKIP_WITHOUT_CUDA();
  testing::check_adam_fixture(Device::CUDA);
}
