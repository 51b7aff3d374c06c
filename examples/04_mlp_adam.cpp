// examples/04_mlp_adam.cpp: a model as an nn::Module, trained with Adam. The whole training loop.
//
// A two-layer perceptron (linear -> GELU -> layer norm -> linear) learns the classic three-armed spiral in
// 2-D: 300 points, 3 classes, not separable by a line.
//
// What to notice:
//   * A model is a Module that registers its parameters and sub-modules by name; named_parameters() then
//     walks them all ("fc1.weight", "norm.bias", ...). That list is all an optimiser needs.
//   * One training step is always the same four lines: forward to a scalar loss, zero the gradients (they
//     accumulate, see 02), backward, optimiser step.
//   * state_dict() gives every parameter by name: what a checkpoint stores (core/safetensors.h writes it).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "examples/check.h"
#include "nn/adam.h"
#include "nn/layers.h"

using namespace sanf;
using example::check;

struct MLP : nn::Module {
  nn::Linear fc1, fc2;
  nn::LayerNorm norm;
  // Initialised wider than timm's std 0.02: 2 inputs of size ~1 need larger weights to start anywhere.
  MLP(int64_t in, int64_t hidden, int64_t classes, Generator* gen)
      : fc1(in, hidden, true, {gen}, 1.0), fc2(hidden, classes, true, {gen}, 0.1), norm(hidden, 1e-5) {
    register_module("fc1", fc1);
    register_module("norm", norm);
    register_module("fc2", fc2);
  }
  Tensor forward(const Tensor& x) { return fc2.forward(norm.forward(gelu(fc1.forward(x)))); }
};

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 300;
  const int64_t per_class = 100, classes = 3;
  const int64_t n = per_class * classes;
  Generator gen(0);

  // The spiral: class k's points lie on an arm r -> angle 4r + 2 pi k / 3, with noise.
  std::vector<double> xs, ys;
  for (int64_t k = 0; k < classes; ++k)
    for (int64_t i = 0; i < per_class; ++i) {
      const double r = double(i) / double(per_class - 1);
      const double t = 4.0 * r + 2.0 * M_PI * double(k) / double(classes) + 0.2 * gen.normal();
      xs.push_back(r * std::sin(t));
      xs.push_back(r * std::cos(t));
      ys.push_back(double(k));
    }
  const Tensor X = Tensor::from_vector(xs, {n, 2});
  const Tensor Y = Tensor::from_vector(ys, {n}, DType::I64);  // class labels, as cross_entropy takes them

  MLP model(2, 64, classes, &gen);
  std::printf("parameters (%lld numbers):\n", (long long)model.parameter_count());
  for (auto& [name, t] : model.named_parameters())
    std::printf("  %-12s %s\n", name.c_str(), shape_str(t->shape()).c_str());
  nn::Adam adam(model.named_parameters(), {.lr = 0.01});

  auto accuracy = [&] {
    NoGradGuard no_grad;  // evaluation records no graph
    const std::vector<double> logits = model.forward(X).to_vector();
    int correct = 0;
    for (int64_t r = 0; r < n; ++r) {
      int best = 0;
      for (int c = 1; c < classes; ++c)
        if (logits[size_t(r * classes + c)] > logits[size_t(r * classes + best)]) best = c;
      correct += best == int(ys[size_t(r)]);
    }
    return double(correct) / double(n);
  };

  double first = 0, last = 0;
  for (int step = 0; step <= steps; ++step) {
    Tensor loss = cross_entropy(model.forward(X), Y);  // forward: logits (300, 3) -> mean loss
    adam.zero_grad();                                  // clear last step's gradients
    backward(loss);                                    // fill p.grad() for every parameter
    adam.step();                                       // p -= lr * m_hat / (sqrt(v_hat) + eps), per parameter
    (step == 0 ? first : last) = loss.item();
    if (step % 50 == 0) std::printf("step %4d  loss %.4f  accuracy %.3f\n", step, loss.item(), accuracy());
  }

  const double acc = accuracy();
  check(last < 0.25 * first, "the loss fell from %.3f to %.3f", first, last);
  check(acc > 0.95, "the MLP separates the spiral: accuracy %.3f (chance: 0.333)", acc);
  check(model.state_dict().size() == 6, "state_dict() names all %zu tensors", model.state_dict().size());
  return example::finish("04_mlp_adam");
}
