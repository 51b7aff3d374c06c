// tests/flows/test_parity.cpp: the flow against an independent plain-PyTorch implementation of docs/METHOD.md §3
// (fixture from tests/fixtures/make_flow_fixture.py), on the CPU: see tests/flows/flow_fixture_check.h.
#include "tests/flows/flow_fixture_check.h"

using namespace sanf;

TEST_CASE("flow parity: matches the PyTorch reference (forward and gradients, f32)") {
  testing::check_flow_fixture(Device::CPU);
}
