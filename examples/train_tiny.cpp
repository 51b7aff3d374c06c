// examples/train_tiny.cpp: the smallest end-to-end use of the framework.
//
// A two-layer perceptron (linear -> GELU -> layer norm -> linear -> log-softmax) learns to classify the
// classic three-armed spiral in 2-D, by gradient descent with momentum, using nothing but the tensor
// library and its autograd. It prints the loss and accuracy as they improve. (The SANF-AD apps, `sanf
// train` / `sanf eval`, are built on the same pieces.)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "autograd/ops.h"

using namespace sanf;

int main(int argc, char** argv) {
  try {
    const int steps = argc > 1 ? std::atoi(argv[1]) : 300;
    const int64_t per_class = 100, classes = 3, hidden = 64;
    const int64_t n = per_class * classes;
    Generator gen(0);

    // The spiral: class k's points lie on an arm r -> angle 4r + 2*pi*k/3, with noise.
    std::vector<double> xs, onehot(size_t(n * classes), 0.0);
    std::vector<int> labels;
    for (int64_t k = 0; k < classes; ++k)
      for (int64_t i = 0; i < per_class; ++i) {
        double r = double(i) / double(per_class - 1);
        double t = 4.0 * r + 2.0 * M_PI * double(k) / double(classes) + 0.2 * gen.normal();
        xs.push_back(r * std::sin(t));
        xs.push_back(r * std::cos(t));
        onehot[size_t((k * per_class + i) * classes + k)] = 1.0;
        labels.push_back(int(k));
      }
    Tensor X = Tensor::from_vector(xs, {n, 2});
    Tensor Y = Tensor::from_vector(onehot, {n, classes});

    // Parameters, initialised as timm does for Linear layers (truncated normal) but wider for a tiny net.
    std::vector<Tensor> params = {
        trunc_normal({hidden, 2}, 1.0, -2, 2, DType::F32, Device::CPU, &gen).set_requires_grad(true),
        zeros({hidden}).set_requires_grad(true),
        ones({hidden}).set_requires_grad(true),
        zeros({hidden}).set_requires_grad(true),
        trunc_normal({classes, hidden}, 0.1, -2, 2, DType::F32, Device::CPU, &gen).set_requires_grad(true),
        zeros({classes}).set_requires_grad(true),
    };
    std::vector<std::vector<float>> velocity;
    for (const Tensor& p : params) velocity.emplace_back(size_t(p.numel()), 0.0f);

    const float lr = 0.1f, momentum = 0.9f;
    std::printf("training a 2-layer perceptron on a 3-class spiral (%lld points)\n", (long long)n);
    for (int step = 0; step <= steps; ++step) {
      Tensor h = layer_norm(gelu(linear(X, params[0], params[1])), params[2], params[3], 1e-5);
      Tensor logp = log_softmax(linear(h, params[4], params[5]), -1);
      Tensor loss = neg(mean(sum(mul(logp, Y), {1})));
      for (Tensor& p : params) p.zero_grad();
      backward(loss);
      for (size_t i = 0; i < params.size(); ++i) {  // SGD with momentum, in place
        float* w = params[i].data<float>();
        const float* g = params[i].grad().data<float>();
        for (size_t j = 0; j < velocity[i].size(); ++j) {
          velocity[i][j] = momentum * velocity[i][j] + g[j];
          w[j] -= lr * velocity[i][j];
        }
      }
      if (step % 25 == 0) {
        std::vector<double> lp = logp.to_vector();
        int correct = 0;
        for (int64_t r = 0; r < n; ++r) {
          int best = 0;
          for (int c = 1; c < classes; ++c)
            if (lp[size_t(r * classes + c)] > lp[size_t(r * classes + best)]) best = c;
          correct += best == labels[size_t(r)];
        }
        std::printf("step %4d  loss %.4f  accuracy %.3f\n", step, loss.item(), double(correct) / double(n));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_tiny: %s\n", e.what());
    return 1;
  }
}
