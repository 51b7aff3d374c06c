// apps/report.h: what `sanf eval` leaves behind for a person to read: plots, a one-file HTML report and a
// CSV of every test sample's scores.
//
// Everything here is self-contained and offline: the SVG plots draw their text as SVG <text> in the
// viewer's own sans-serif font (no font files, no scripts), and the HTML report inlines its CSS, the SVGs
// and the thumbnails (PNG bytes as data: URIs), so the report is one file that can be mailed or archived.
// All caller text (titles, metric names, captions, class names) is escaped. Every file is written
// atomically (core/atomic_file.h): a failed or interrupted run leaves the old file or none, never half of
// one. The PNG bytes come from the caller, so this file does not depend on any image codec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/metrics.h"

namespace sanf::apps {

// ---- text helpers ---------------------------------------------------------------------------------------

// Escape text for HTML and SVG (XML) content and attribute values: & < > " ' become entities.
std::string html_escape(std::string_view text);

// A CSV field: quoted (with quotes doubled) when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& v);
// A number for a CSV file: %.9g, enough digits to read a float back exactly.
std::string csv_number(double v);

// Base64 (RFC 4648 section 4: alphabet A-Z a-z 0-9 + /, '=' padding, no line breaks).
std::string base64_encode(std::string_view bytes);

// ---- plots (standalone SVG documents) --------------------------------------------------------------------

// The ROC curve on the unit square, with axes ticked 0, 0.2, ..., 1, the chance diagonal and a legend
// "ROC (AUROC = 0.9876)".
std::string roc_svg(const RocCurve& roc, double auroc, const std::string& title);

// Histograms of the normal (label 0) and anomalous (label 1) scores, overlaid in two translucent colours on
// shared bins. The bins cover the bulk of the scores, so a few extreme ones cannot squeeze the overlap of the
// two classes into a sliver: `bins` equal bins over [lo, hi], where lo and hi are the smallest and largest
// scores within [p1 - w/4, p99 + w/4] (p1, p99: the 1st and 99th percentiles of all scores, as the order
// statistics at floor(0.01 (n - 1)) and ceil(0.99 (n - 1)); w = p99 - p1). With 101 scores or fewer, or
// without far outliers, that is [min, max] and everything is drawn. Scores outside [lo, hi] are not drawn;
// a note under the plot (<text class="outliers">) counts them, per side and class: "not shown: 3 scores below
// 0.0123 (3 normal), 5 scores above 15 (1 normal, 4 anomalous)". Each class is normalised to a density (count /
// (class size * bin width), the class size counting its undrawn scores too), so a small class is as visible
// as a large one. The legend gives each class's full size. Draws exactly `bins` bars per class present (empty
// bins are zero-height bars), each a <rect class="bar normal"> or <rect class="bar anomalous">.
std::string histogram_svg(const std::vector<double>& scores, const std::vector<int>& labels,
                          const std::string& title, int bins = 40);

// ---- the HTML report -------------------------------------------------------------------------------------

struct Thumbnail {
  std::string png;      // the bytes of a PNG file (checked for the PNG signature)
  std::string caption;  // e.g. "#1234 sneaker (anomalous), score 812.4"
};

struct ReportInput {
  std::string title;
  std::vector<std::pair<std::string, std::string>> metrics;  // rows of the metrics table: name, value
  std::string roc_svg, histogram_svg;                        // from the functions above; "" leaves one out
  std::vector<Thumbnail> most_anomalous, most_normal;        // in the order to show them
  std::string maps_title;                                    // the heading of `maps`
  std::vector<Thumbnail> maps;                               // anomaly maps; none: no section
};

// The report as one HTML document.
std::string report_html(const ReportInput& in);

// report_html(in), written atomically to `path`.
void write_report_html(const std::string& path, const ReportInput& in);

// ---- the one-class index --------------------------------------------------------------------------------

// The front page of a `sanf oneclass` / `sanf demo` output directory, from results.json's content (see
// oneclass_run in apps/train.h: dataset, backbone, backbone_random, no_caff, epochs, classes[] with class,
// name, auroc, auroc_z2, aupr, f1_max, run; mean with the four metrics): one HTML document (CSS inline, no
// scripts) with a table of class, name, AUROC, AUROC_z2, AUPR, F1max (4 decimals) per class and a mean row.
// Each name links to that class's report by a relative link, "<run's last path component>/report.html"
// (e.g. "1-trouser/report.html"), percent-encoded (every byte but A-Z a-z 0-9 - . _ ~ becomes %XX), so the
// directory can be moved or archived whole. All text is escaped. Throws naming the missing field when
// `results` lacks one.
std::string index_html(const nlohmann::json& results);

// ---- the scores CSV --------------------------------------------------------------------------------------

// One row per sample, in the order given:
//   index,label,label_name,is_anomaly,score_nll,score_z2,path
// `indices` are the samples' positions in the dataset split, `labels` their class labels (indices into
// `label_names`, the dataset's class names), `is_anomaly` 0/1 as given to the metrics, `paths` each sample's
// image file (Dataset::path: set for the folder and mvtec datasets; "" for the binary formats, where `index`
// is the record's position in the split and there is no file per image). An empty `paths` leaves the column
// empty on every row. Scores are printed with %.9g (enough digits to read a float back exactly). Names and
// paths containing a comma, quote or line break are quoted as RFC 4180 says. All vectors but label_names
// (and an empty `paths`) must have the same length. Written atomically.
void write_scores_csv(const std::string& path, const std::vector<int64_t>& indices,
                      const std::vector<int64_t>& labels, const std::vector<double>& nll_scores,
                      const std::vector<double>& z2_scores, const std::vector<std::string>& label_names,
                      const std::vector<int>& is_anomaly, const std::vector<std::string>& paths = {});

}  // namespace sanf::apps
