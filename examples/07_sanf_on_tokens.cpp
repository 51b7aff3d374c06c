// examples/07_sanf_on_tokens.cpp: SANF-AD end to end, small: a backbone's tokens, a flow trained on them,
// anomaly scores, AUROC.
//
//   1. A ViT turns each image into tokens: the class token y (D numbers) and N patch tokens P (N x D).
//      Here a tiny, randomly initialised ViT (no pretrained weights can be downloaded on these machines),
//      run ONCE over every image, its tokens kept: the flow trains for many epochs on the same tokens, so
//      the backbone's cost is paid once (`sanf` does the same with an on-disk cache, apps/features.h).
//   2. The flow (flows/flow.h) maps y to z, each coupling conditioned on P through class attention (CAFF),
//      and is trained on NORMAL images only to maximise their likelihood: loss = mean NLL / D, where
//      NLL = 0.5 |z|^2 - log|det dz/dy|.
//   3. The anomaly score of a test image is its NLL: images unlike the normal class should get a low
//      likelihood, a high score. AUROC (apps/metrics.h) measures how well the scores separate the two
//      classes: 1 = perfectly, 0.5 = chance.
// With a random backbone the features are not semantic, so the AUROC is far from the paper's; this example
// shows the pipeline, and checks only that it runs and gives finite numbers.
#include <cmath>
#include <cstdio>

#include "apps/datasets.h"
#include "apps/metrics.h"
#include "examples/check.h"
#include "flows/flow.h"
#include "vit/preprocess.h"
#include "vit/vit.h"

using namespace sanf;
using example::check;

namespace {
// The first `n` images of class `label` in `ds`, through the backbone: y (n, D) and P (n, N, D).
std::pair<Tensor, Tensor> tokens_of(vit::VisionTransformer& vit, const apps::Dataset& ds, int64_t label, int64_t n) {
  NoGradGuard no_grad;  // the backbone is frozen: no graph, no gradients
  std::vector<Tensor> images;
  for (int64_t i = 0; i < ds.size() && int64_t(images.size()) < n; ++i)
    if (ds.label(i) == label) images.push_back(ds.image(i));
  Tensor tokens = vit.forward(vit::preprocess(images, vit.config()));  // (n, 1+N, D)
  const int64_t N = tokens.size(1) - 1;
  return {contiguous(select(tokens, 1, 0)), contiguous(narrow(tokens, 1, 1, N))};
}
}  // namespace

int main() {
  try {
    auto train = apps::open_dataset("fashion-mnist", apps::kDefaultFashionMnistDir, apps::Split::Train);
    auto test = apps::open_dataset("fashion-mnist", apps::kDefaultFashionMnistDir, apps::Split::Test);
    const int64_t normal = 1, anomaly = 8;  // trouser is the normal class; bag plays the anomaly
    const auto& names = train->class_names();

    // 1. The backbone: 28x28 images, 7x7 patches (16 patch tokens), width 64, 2 blocks, seeded.
    vit::ViTConfig cfg;
    cfg.image_size = 28, cfg.patch_size = 7, cfg.dim = 64, cfg.depth = 2, cfg.heads = 4;
    Generator gen(0);
    vit::VisionTransformer backbone(cfg, {&gen});
    auto [y_train, P_train] = tokens_of(backbone, *train, normal, 320);
    auto [y_norm, P_norm] = tokens_of(backbone, *test, normal, 200);
    auto [y_anom, P_anom] = tokens_of(backbone, *test, anomaly, 200);
    std::printf("training tokens: y %s, P %s (%s); test tokens: 200 %s, 200 %s\n", shape_str(y_train.shape()).c_str(),
                shape_str(P_train.shape()).c_str(), names[normal].c_str(), names[normal].c_str(),
                names[anomaly].c_str());

    // 2. The flow: K = 2 couplings over D = 64, conditioned on the 16 patch tokens. Its last layers start
    //    at zero, so the untrained flow is the identity (z = y, log det = 0).
    flows::FlowConfig fcfg;
    fcfg.dim = cfg.dim, fcfg.tokens = cfg.num_patches(), fcfg.layers = 2, fcfg.hidden = 64, fcfg.heads = 4;
    flows::Flow flow(fcfg);
    nn::Adam adam(flow.named_parameters(), {.lr = 1e-3, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5});
    const int64_t n = y_train.size(0), bs = 32;
    double first = NAN, last = NAN;
    for (int epoch = 1; epoch <= 15; ++epoch) {
      double total = 0;
      for (int64_t b0 = 0; b0 < n; b0 += bs) {
        const int64_t b = std::min(bs, n - b0);
        Tensor loss = flows::nll_loss(flow.forward(narrow(y_train, 0, b0, b), narrow(P_train, 0, b0, b)));
        adam.zero_grad();
        backward(loss);
        adam.step();
        total += loss.item() * double(b) / double(n);
      }
      if (epoch == 1) first = total;
      last = total;
      if (epoch % 5 == 0 || epoch == 1) std::printf("epoch %2d  loss (NLL / D) %.4f\n", epoch, total);
    }

    // 3. Scores: NLL per test image; normal = 0, anomalous = 1 for the AUROC.
    NoGradGuard no_grad;
    std::vector<double> scores = flows::nll(flow.forward(y_norm, P_norm)).to_vector();
    const std::vector<double> s_anom = flows::nll(flow.forward(y_anom, P_anom)).to_vector();
    std::vector<int> labels(scores.size(), 0);
    scores.insert(scores.end(), s_anom.begin(), s_anom.end());
    labels.resize(scores.size(), 1);
    double mean_norm = 0, mean_anom = 0;
    for (size_t i = 0; i < scores.size(); ++i) (labels[i] ? mean_anom : mean_norm) += scores[i] / 200.0;
    const double auroc = apps::auroc(scores, labels);
    std::printf("mean NLL: %s (normal) %.1f, %s (anomalous) %.1f\n", names[normal].c_str(), mean_norm,
                names[anomaly].c_str(), mean_anom);
    std::printf("AUROC %s vs %s: %.3f (random backbone; 0.5 = chance)\n", names[normal].c_str(), names[anomaly].c_str(),
                auroc);

    check(std::isfinite(first) && std::isfinite(last) && last < first, "training ran: loss %.3f -> %.3f", first, last);
    bool finite = true;
    for (double s : scores) finite = finite && std::isfinite(s);
    check(finite, "every score is finite");
    check(auroc >= 0 && auroc <= 1, "the AUROC is a number in [0, 1]");
    return example::finish("07_sanf_on_tokens");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "07_sanf_on_tokens: %s\n", e.what());
    return 1;
  }
}
