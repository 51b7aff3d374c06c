// examples/08_vit_fashion_mnist.cpp: the capstone. A small Vision Transformer learns Fashion-MNIST from
// scratch with nothing but this framework, and its backbone is saved as a checkpoint that `sanf` loads.
//
//   build/examples/08_vit_fashion_mnist --short   2,048 training images, 2 epochs, 500 test images (what ctest runs)
//   build/examples/08_vit_fashion_mnist           all 60,000 training images, 6 epochs, all 10,000 test images
//   options: --train N --test N (0 = all)  --epochs E  --lr LR  --batch B  --out CKPT.safetensors
//            (default: vit-fashion-mnist.safetensors in the current directory)
//
// What to notice:
//   * The model is vit::VisionTransformer, the same class `sanf` runs as its backbone, plus one nn::Linear
//     on the class token: the classifier is a Module holding two Modules, so named_parameters() gives
//     "vit.blocks.0.attn.qkv.weight", ..., "head.weight", and one Adam trains all of them.
//   * The loss is cross_entropy (autograd/ops.h), one fused op: stable log-sum-exp forward, softmax minus the
//     one-hot label backward.
//   * Evaluation runs under NoGradGuard: no graph is recorded, so no activations are kept.
//   * The checkpoint is vit.save(): the backbone only, under timm's names with the architecture in the
//     file's metadata, the format `sanf convert` writes. The head is NOT saved: sanf's loader is strict and
//     refuses a file with tensors it does not expect (e.g. "head.weight"), and anomaly detection uses the
//     tokens, not the class scores. So `sanf train --backbone CKPT` and `sanf extract --backbone CKPT` work.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "apps/datasets.h"
#include "nn/adam.h"
#include "vit/preprocess.h"
#include "vit/vit.h"

using namespace sanf;

// The classifier: backbone tokens (B, 1+N, D) -> the class token (B, D) -> 10 logits.
struct Classifier : nn::Module {
  vit::VisionTransformer vit;
  nn::Linear head;
  Classifier(const vit::ViTConfig& cfg, int64_t classes, nn::InitOptions init)
      : vit(cfg, init), head(cfg.dim, classes, true, init) {
    register_module("vit", vit);
    register_module("head", head);
  }
  Tensor forward(const Tensor& images) { return head.forward(select(vit.forward(images), 1, 0)); }
};

// Images rows[b0 .. b1) of `ds` as the backbone's input (B, 3, 28, 28): gray replicated to 3 channels,
// scaled to [0, 1], then (x - 0.5) / 0.5, exactly what `sanf` does to an image before its backbone.
// With `flip`, each image is mirrored left-right with probability 1/2 (a cheap augmentation that suits
// clothes); the labels come back as (B) i64.
std::pair<Tensor, Tensor> batch(const apps::Dataset& ds, const std::vector<int64_t>& rows, size_t b0, size_t b1,
                                const vit::ViTConfig& cfg, Generator* flip) {
  std::vector<Tensor> images;
  std::vector<double> labels;
  for (size_t i = b0; i < b1; ++i) {
    Tensor img = ds.image(rows[i]);  // u8 (1, 28, 28)
    if (flip && flip->uniform() < 0.5) {
      Tensor m = clone(img);
      uint8_t* p = m.data<uint8_t>();
      const int64_t H = m.size(1), W = m.size(2);
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W / 2; ++x) std::swap(p[y * W + x], p[y * W + W - 1 - x]);
      img = m;
    }
    images.push_back(img);
    labels.push_back(double(ds.label(rows[i])));
  }
  return {vit::preprocess(images, cfg), Tensor::from_vector(labels, {int64_t(labels.size())}, DType::I64)};
}

// Held-out accuracy: argmax of the logits against the labels, in batches, recording no graph.
double accuracy(Classifier& model, const apps::Dataset& ds, int64_t n, const vit::ViTConfig& cfg) {
  NoGradGuard no_grad;
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
  int64_t correct = 0;
  for (size_t b0 = 0; b0 < rows.size(); b0 += 500) {
    const size_t b1 = std::min(rows.size(), b0 + 500);
    auto [x, y] = batch(ds, rows, b0, b1, cfg, nullptr);
    const std::vector<double> logits = model.forward(x).to_vector(), labels = y.to_vector();
    const size_t C = logits.size() / labels.size();
    for (size_t r = 0; r < labels.size(); ++r) {
      size_t best = 0;
      for (size_t c = 1; c < C; ++c)
        if (logits[r * C + c] > logits[r * C + best]) best = c;
      correct += double(best) == labels[r];
    }
  }
  return double(correct) / double(n);
}

int main(int argc, char** argv) {
  try {
    bool is_short = false;
    int64_t n_train = 0, n_test = 0, epochs = 6, bs = 128;
    double lr = 1e-3;
    std::string out = "vit-fashion-mnist.safetensors", data = apps::kDefaultFashionMnistDir;
    for (int i = 1; i < argc; ++i) {
      auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw Error("missing value after an option"); };
      const std::string a = argv[i];
      if (a == "--short") {
        is_short = true, n_train = 2048, n_test = 500, epochs = 2, bs = 16;
      } else if (a == "--train") {
        n_train = std::stoll(next());
      } else if (a == "--test") {
        n_test = std::stoll(next());
      } else if (a == "--epochs") {
        epochs = std::stoll(next());
      } else if (a == "--lr") {
        lr = std::stod(next());
      } else if (a == "--batch") {
        bs = std::stoll(next());
      } else if (a == "--out") {
        out = next();
      } else if (a == "--data-dir") {
        data = next();
      } else {
        throw Error("unknown option " + a + " (see the comment at the top of examples/08_vit_fashion_mnist.cpp)");
      }
    }
    auto train = apps::open_dataset("fashion-mnist", data, apps::Split::Train);
    auto test = apps::open_dataset("fashion-mnist", data, apps::Split::Test);
    if (n_train <= 0 || n_train > train->size()) n_train = train->size();
    if (n_test <= 0 || n_test > test->size()) n_test = test->size();

    // The architecture: 28x28 images cut into 4x4 patches (a 7x7 grid: 49 tokens plus the class token),
    // 4 blocks of width 96 with 4 heads of 24 channels and an MLP of width 192. 3 input channels (the gray
    // image replicated), as every backbone `sanf` loads.
    vit::ViTConfig cfg;
    cfg.name = "vit-fashion-mnist";
    cfg.image_size = 28, cfg.patch_size = 4, cfg.in_chans = 3;
    cfg.dim = 96, cfg.depth = 4, cfg.heads = 4, cfg.mlp_ratio = 2.0;
    Generator gen(0);
    Classifier model(cfg, int64_t(train->class_names().size()), {&gen});
    nn::Adam adam(model.named_parameters(), {.lr = lr});
    std::printf("ViT %s: %lldx%lld images, patch %lld, dim %lld, depth %lld, heads %lld: %lld parameters\n",
                cfg.name.c_str(), (long long)cfg.image_size, (long long)cfg.image_size, (long long)cfg.patch_size,
                (long long)cfg.dim, (long long)cfg.depth, (long long)cfg.heads, (long long)model.parameter_count());
    std::printf("training on %lld images, %lld epoch(s), batch %lld, Adam lr %g with cosine decay; testing on %lld\n",
                (long long)n_train, (long long)epochs, (long long)bs, lr, (long long)n_test);

    const int64_t steps_per_epoch = (n_train + bs - 1) / bs, total_steps = epochs * steps_per_epoch;
    const auto t0 = std::chrono::steady_clock::now();
    double first_loss = NAN, acc = 0, epoch_loss = 0;
    int64_t step = 0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      std::vector<int64_t> order = gen.permutation(n_train);  // a fresh shuffle of the first n_train images
      epoch_loss = 0;
      for (size_t b0 = 0; b0 < order.size(); b0 += size_t(bs), ++step) {
        // Cosine decay of the learning rate from lr to 0 over the whole run.
        adam.options().lr = 0.5 * lr * (1.0 + std::cos(M_PI * double(step) / double(total_steps)));
        auto [x, y] = batch(*train, order, b0, std::min(order.size(), b0 + size_t(bs)), cfg, &gen);
        Tensor loss = cross_entropy(model.forward(x), y);
        adam.zero_grad();
        backward(loss);
        adam.step();
        const double l = loss.item();
        if (!std::isfinite(l)) throw Error("the loss is not finite at step " + std::to_string(step));
        if (std::isnan(first_loss)) first_loss = l;
        epoch_loss += l;
        if ((step + 1) % 100 == 0) {
          std::printf("  step %lld  loss %.4f\n", (long long)step + 1, l);
          std::fflush(stdout);
        }
      }
      epoch_loss /= double(steps_per_epoch);
      acc = accuracy(model, *test, n_test, cfg);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("epoch %lld  train loss %.4f  held-out accuracy %.4f  (%.0f s)\n", (long long)epoch, epoch_loss, acc,
                  secs);
      std::fflush(stdout);
    }

    // The backbone as a checkpoint sanf loads; reading it back must give the same tokens.
    model.vit.save(out);
    auto loaded = vit::VisionTransformer::load(out);
    NoGradGuard no_grad;
    auto [x, y] = batch(*test, {0, 1, 2, 3}, 0, 4, cfg, nullptr);
    const std::vector<double> a = model.vit.forward(x).to_vector(), b = loaded->forward(x).to_vector();
    const bool same = a == b;
    std::printf("saved the backbone to %s (%zu tensors; the head is not saved); reloaded tokens %s\n", out.c_str(),
                model.vit.state_dict().size(), same ? "identical" : "DIFFER");

    // Checks: the loss fell from its first value (about log 10 = 2.30 for a fresh model), the classifier beats
    // chance (0.10) clearly (twice over in the short form, which sees 2,048 images; 0.8 for a full run), and
    // the checkpoint round-trips.
    const double floor = is_short ? 0.2 : 0.8;
    const bool ok = same && epoch_loss < first_loss && acc > floor;
    std::printf("first loss %.3f, last epoch's mean loss %.3f, final held-out accuracy %.4f (floor %.2f): %s\n",
                first_loss, epoch_loss, acc, floor, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "08_vit_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
