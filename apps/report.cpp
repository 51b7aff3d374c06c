// apps/report.cpp: SVG plots, the HTML report and the scores CSV (see report.h).
//
// The SVGs are built by hand as strings: a plot is a frame (title, axes, ticks, labels) around a few shapes,
// and writing them directly keeps the output small and predictable. Coordinates are SVG pixels, y down;
// px()/py() map data values into the plot area. Axis lines sit on half pixels with crispEdges so they
// render one pixel wide and sharp.
#include "apps/report.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sanf::apps {

// ---- text helpers ---------------------------------------------------------------------------------------

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  // Each 3 bytes (24 bits) become 4 characters of 6 bits; a last group of 1 or 2 bytes is padded with '='.
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (n > 1) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (n > 2) v |= uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += n > 1 ? kAlphabet[(v >> 6) & 63] : '=';
    out += n > 2 ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// ---- plots ----------------------------------------------------------------------------------------------

namespace {

// A coordinate with two decimals: plenty for a screen, and short.
std::string num(double v) { return fmt::format("{:.2f}", v); }

const char* kNormalColour = "#1f77b4";     // blue
const char* kAnomalousColour = "#d62728";  // red
const char* kAxisColour = "#333333";
const char* kGridColour = "#e6e6e6";

// The plot area inside an SVG of width x height, and the data ranges it shows.
struct Frame {
  double left, top, width, height;  // plot area, pixels
  double x0, x1, y0, y1;            // data range
  double px(double x) const { return left + (x - x0) / (x1 - x0) * width; }
  double py(double y) const { return top + height - (y - y0) / (y1 - y0) * height; }
};

std::string svg_open(int width, int height) {
  return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                     "font-family=\"sans-serif\" font-size=\"12\">\n"
                     "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n",
                     width, height);
}

std::string text(double x, double y, const std::string& s, const char* anchor, const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor + "\"" +
         (extra.empty() ? "" : " " + extra) + ">" + html_escape(s) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* colour, const std::string& extra = "") {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
         "\" stroke=\"" + colour + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

// About `target` round tick values (steps of 1, 2 or 5 times a power of ten) within [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target, int& decimals) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1)
    ticks.push_back(std::abs(k) < 0.5 ? 0.0 : k * step);  // exactly 0, never "-0"
  return ticks;
}

// Axes (left and bottom), grid lines, tick marks and labels, axis titles and the plot title.
std::string axes(const Frame& f, const std::vector<double>& xticks, int xdec, const std::vector<double>& yticks,
                 int ydec, const std::string& xlabel, const std::string& ylabel, const std::string& title,
                 int svg_width) {
  std::string s;
  const double bottom = std::round(f.top + f.height) + 0.5, left = std::round(f.left) - 0.5;
  s += "<g shape-rendering=\"crispEdges\" stroke-width=\"1\">\n";
  for (double x : xticks) s += line(f.px(x), f.top, f.px(x), bottom, kGridColour);
  for (double y : yticks) s += line(left, f.py(y), f.left + f.width, f.py(y), kGridColour);
  s += line(left, bottom, f.left + f.width, bottom, kAxisColour);
  s += line(left, f.top, left, bottom, kAxisColour);
  for (double x : xticks) s += line(f.px(x), bottom, f.px(x), bottom + 5, kAxisColour);
  for (double y : yticks) s += line(left - 5, f.py(y), left, f.py(y), kAxisColour);
  s += "</g>\n<g fill=\"" + std::string(kAxisColour) + "\">\n";
  for (double x : xticks) s += text(f.px(x), bottom + 18, fmt::format("{:.{}f}", x, xdec), "middle");
  for (double y : yticks) s += text(left - 8, f.py(y) + 4, fmt::format("{:.{}f}", y, ydec), "end");
  s += text(f.left + f.width / 2, bottom + 38, xlabel, "middle");
  const double ylx = 16, yly = f.top + f.height / 2;
  s += text(ylx, yly, ylabel, "middle", "transform=\"rotate(-90 " + num(ylx) + " " + num(yly) + ")\"");
  s += text(svg_width / 2.0, 22, title, "middle", "font-size=\"14\" font-weight=\"bold\"");
  s += "</g>\n";
  return s;
}

// A legend box with its top left corner at (x, y): one row per entry, a swatch (placed by the caller at
// x + 8 .. x + 32, row i centred at y + 14 + 20 i) then the label.
struct LegendRow {
  std::string swatch;  // SVG for the 24 x 12 swatch, already placed
  std::string label;
};
std::string legend(double x, double y, double width, const std::vector<LegendRow>& rows) {
  std::string s = "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(width) + "\" height=\"" +
                  num(8 + 20.0 * double(rows.size())) + "\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#999999\"/>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    s += rows[i].swatch;
    s += text(x + 38, y + 18 + 20.0 * double(i), rows[i].label, "start", "fill=\"" + std::string(kAxisColour) + "\"");
  }
  return s;
}

// "not shown: 3 scores below 0.0123 (3 normal), 5 scores above 15 (1 normal, 4 anomalous)"; a side with none is
// left out.
std::string outlier_note(const int64_t below[2], const int64_t above[2], double lo, double hi) {
  auto side = [](const int64_t k[2], const char* where, double at) {
    const int64_t total = k[0] + k[1];
    if (total == 0) return std::string();
    std::string by_class;
    if (k[0] > 0) by_class += cat(k[0], " normal");
    if (k[1] > 0) by_class += cat(k[0] > 0 ? ", " : "", k[1], " anomalous");
    return cat(total, total == 1 ? " score " : " scores ", where, " ", fmt::format("{:.4g}", at), " (", by_class, ")");
  };
  const std::string b = side(below, "below", lo), a = side(above, "above", hi);
  return "not shown: " + b + (b.empty() || a.empty() ? "" : ", ") + a;
}

}  // namespace

std::string roc_svg(const RocCurve& roc, double auroc, const std::string& title) {
  SANF_CHECK(!roc.fpr.empty() && roc.fpr.size() == roc.tpr.size(), "roc_svg: the curve has ", roc.fpr.size(),
             " FPR and ", roc.tpr.size(), " TPR values");
  const int W = 420, H = 420;
  const Frame f{64, 40, 330, 320, 0, 1, 0, 1};
  std::vector<double> ticks;
  for (int k = 0; k <= 5; ++k) ticks.push_back(k / 5.0);
  std::string s = svg_open(W, H);
  s += axes(f, ticks, 1, ticks, 1, "false positive rate", "true positive rate", title, W);
  s += line(f.px(0), f.py(0), f.px(1), f.py(1), "#999999", "stroke-dasharray=\"5 4\"");  // chance
  // The curve, at 1/100 pixel; points that add nothing (duplicates, the middle of a straight horizontal
  // or vertical run) are dropped, so a curve of 10000 thresholds stays a few kilobytes.
  std::vector<std::pair<std::string, std::string>> pts;
  for (size_t k = 0; k < roc.fpr.size(); ++k) {
    std::pair<std::string, std::string> p{num(f.px(roc.fpr[k])), num(f.py(roc.tpr[k]))};
    if (!pts.empty() && pts.back() == p) continue;
    const size_t n = pts.size();
    if (n >= 2 && ((pts[n - 2].first == pts[n - 1].first && pts[n - 1].first == p.first) ||
                   (pts[n - 2].second == pts[n - 1].second && pts[n - 1].second == p.second)))
      pts.back() = p;
    else
      pts.push_back(p);
  }
  s += "<polyline fill=\"none\" stroke=\"" + std::string(kAnomalousColour) +
       "\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"";
  for (size_t k = 0; k < pts.size(); ++k) s += (k ? " " : "") + pts[k].first + "," + pts[k].second;
  s += "\"/>\n";
  const double lx = f.left + f.width - 190, ly = f.top + f.height - 58;
  s += legend(lx, ly, 182,
              {{line(lx + 8, ly + 14, lx + 32, ly + 14, kAnomalousColour, "stroke-width=\"2\""),
                fmt::format("ROC (AUROC = {:.4f})", auroc)},
               {line(lx + 8, ly + 34, lx + 32, ly + 34, "#999999", "stroke-dasharray=\"5 4\""), "chance"}});
  s += "</svg>\n";
  return s;
}

std::string histogram_svg(const std::vector<double>& scores, const std::vector<int>& labels,
                          const std::string& title, int bins) {
  SANF_CHECK(bins >= 1 && bins <= 10000, "histogram_svg: bins must be in 1..10000, got ", bins);
  SANF_CHECK(scores.size() == labels.size(), "histogram_svg: ", scores.size(), " scores but ", labels.size(),
             " labels");
  SANF_CHECK(!scores.empty(), "histogram_svg: no samples");
  int64_t count[2] = {0, 0};
  for (size_t i = 0; i < scores.size(); ++i) {
    SANF_CHECK(std::isfinite(scores[i]), "histogram_svg: score at index ", i, " is ", scores[i]);
    SANF_CHECK(labels[i] == 0 || labels[i] == 1, "histogram_svg: label at index ", i, " is ", labels[i],
               "; labels must be 0 (normal) or 1 (anomalous)");
    count[labels[i]]++;
  }
  // Shared bins over the bulk: [lo, hi] = the smallest and largest scores within the 1st..99th percentile range
  // widened by a quarter of its width on each side; scores beyond are counted in a note, not drawn. (A range of
  // one value is widened to [v - 0.5, v + 0.5].)
  std::vector<double> sorted = scores;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double p01 = sorted[size_t(std::floor(0.01 * double(n - 1)))];
  const double p99 = sorted[size_t(std::ceil(0.99 * double(n - 1)))];
  const double fence_lo = p01 - (p99 - p01) / 4, fence_hi = p99 + (p99 - p01) / 4;
  double lo = *std::lower_bound(sorted.begin(), sorted.end(), fence_lo);
  double hi = *(std::upper_bound(sorted.begin(), sorted.end(), fence_hi) - 1);
  const double shown_lo = lo, shown_hi = hi;
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double bin_width = (hi - lo) / bins;
  std::vector<double> density[2] = {std::vector<double>(size_t(bins), 0.0), std::vector<double>(size_t(bins), 0.0)};
  int64_t below[2] = {0, 0}, above[2] = {0, 0};
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] < shown_lo || scores[i] > shown_hi) {
      (scores[i] < shown_lo ? below : above)[labels[i]]++;
      continue;
    }
    const int b = std::clamp(int((scores[i] - lo) / bin_width), 0, bins - 1);  // the maximum goes in the last bin
    density[labels[i]][size_t(b)] += 1.0;
  }
  double top = 0;
  for (int c = 0; c < 2; ++c)
    for (double& d : density[c]) {
      if (count[c] > 0) d /= double(count[c]) * bin_width;
      top = std::max(top, d);
    }

  const bool clipped = below[0] + below[1] + above[0] + above[1] > 0;
  const int W = 560, H = clipped ? 400 : 380;
  int xdec = 0, ydec = 0;
  std::vector<double> yticks = nice_ticks(0, top * 1.08, 5, ydec);
  const Frame f{72, 40, 468, 280, lo, hi, 0, top * 1.08};
  std::string s = svg_open(W, H);
  s += axes(f, nice_ticks(lo, hi, 6, xdec), xdec, yticks, ydec, "anomaly score", "density", title, W);
  const char* names[2] = {"normal", "anomalous"};
  const char* colours[2] = {kNormalColour, kAnomalousColour};
  for (int c = 0; c < 2; ++c) {
    if (count[c] == 0) continue;
    s += "<g fill=\"" + std::string(colours[c]) + "\" fill-opacity=\"0.45\" stroke=\"" + colours[c] +
         "\" stroke-width=\"0.5\" shape-rendering=\"crispEdges\">\n";
    for (int b = 0; b < bins; ++b) {
      const double x0 = f.px(lo + b * bin_width), x1 = f.px(lo + (b + 1) * bin_width);
      const double y = f.py(density[c][size_t(b)]);
      s += "<rect class=\"bar " + std::string(names[c]) + "\" x=\"" + num(x0) + "\" y=\"" + num(y) + "\" width=\"" +
           num(x1 - x0) + "\" height=\"" + num(f.py(0) - y) + "\"/>\n";
    }
    s += "</g>\n";
  }
  const double lx = f.left + f.width - 178, ly = f.top + 8;
  std::vector<LegendRow> rows;
  for (int c = 0; c < 2; ++c) {
    const std::string swatch = "<rect x=\"" + num(lx + 8) + "\" y=\"" + num(ly + 8 + 20 * c) +
                               "\" width=\"24\" height=\"12\" fill=\"" + colours[c] + "\" fill-opacity=\"0.45\" stroke=\"" +
                               colours[c] + "\"/>\n";
    rows.push_back({swatch, cat(names[c], " (n = ", count[c], ")")});
  }
  s += legend(lx, ly, 170, rows);
  if (clipped) s += text(W / 2.0, H - 8, outlier_note(below, above, shown_lo, shown_hi), "middle",
                         "class=\"outliers\" font-size=\"11\" fill=\"" + std::string(kAxisColour) + "\"");
  s += "</svg>\n";
  return s;
}

// ---- the HTML report ------------------------------------------------------------------------------------

namespace {

const char* kCss = R"(
body { font-family: sans-serif; color: #222; margin: 24px auto; max-width: 1160px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 8px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table.metrics { border-collapse: collapse; }
table.metrics td { border: 1px solid #ddd; padding: 4px 12px; }
table.metrics td.value { font-family: monospace; text-align: right; }
table.metrics th { border: 1px solid #ddd; padding: 4px 12px; background: #f4f4f4; }
table.metrics tr.mean td { font-weight: bold; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.plots svg { border: 1px solid #ddd; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; width: 128px; font-size: 11px; text-align: center; }
figure img { width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated;
             background: #000; border: 1px solid #ccc; }
figcaption { margin-top: 3px; word-wrap: break-word; }
footer { margin-top: 32px; font-size: 11px; color: #888; }
)";

std::string thumbnails(const char* what, const std::vector<Thumbnail>& items) {
  if (items.empty()) return "<p>(none)</p>\n";
  static const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);
  std::string s = "<div class=\"thumbs\">\n";
  for (size_t i = 0; i < items.size(); ++i) {
    const Thumbnail& t = items[i];
    SANF_CHECK(t.png.compare(0, kPngSignature.size(), kPngSignature) == 0, "report: ", what, " thumbnail ", i,
               " (", t.caption, ") is not a PNG file (", t.png.size(), " bytes without the PNG signature)");
    const std::string caption = html_escape(t.caption);
    s += "<figure><img alt=\"" + caption + "\" src=\"data:image/png;base64," + base64_encode(t.png) +
         "\"><figcaption>" + caption + "</figcaption></figure>\n";
  }
  return s + "</div>\n";
}

// The start of an HTML document up to its <h1> title, and its end after a footer line.
std::string html_open(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(title) +
         "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<h1>" + html_escape(title) + "</h1>\n";
}
std::string html_close(const std::string& footer) {
  return "<footer>" + html_escape(footer) + "</footer>\n</body>\n</html>\n";
}

// An SVG from roc_svg / histogram_svg, inlined as it is (it is our own markup, not caller text).
std::string inline_svg(const char* what, const std::string& svg) {
  if (svg.empty()) return "";
  SANF_CHECK(svg.rfind("<svg", 0) == 0, "report: the ", what, " plot is not an SVG document (it starts with \"",
             svg.substr(0, 20), "\")");
  return svg;
}

}  // namespace

std::string report_html(const ReportInput& in) {
  std::string s = html_open(in.title);
  s += "<h2>Metrics</h2>\n<table class=\"metrics\">\n";
  for (const auto& [name, value] : in.metrics)
    s += "<tr><td>" + html_escape(name) + "</td><td class=\"value\">" + html_escape(value) + "</td></tr>\n";
  s += "</table>\n";
  if (!in.roc_svg.empty() || !in.histogram_svg.empty()) {
    s += "<h2>Plots</h2>\n<div class=\"plots\">\n";
    s += inline_svg("ROC", in.roc_svg) + inline_svg("histogram", in.histogram_svg);
    s += "</div>\n";
  }
  s += "<h2>Most anomalous test images</h2>\n" + thumbnails("most anomalous", in.most_anomalous);
  s += "<h2>Most normal test images</h2>\n" + thumbnails("most normal", in.most_normal);
  if (!in.maps.empty()) s += "<h2>" + html_escape(in.maps_title) + "</h2>\n" + thumbnails("anomaly maps", in.maps);
  s += html_close("Written by sanf eval.");
  return s;
}

void write_report_html(const std::string& path, const ReportInput& in) { write_file_atomic(path, report_html(in)); }

// ---- the one-class index ----------------------------------------------------------------------------------

namespace {

// RFC 3986 percent-encoding of one path segment: unreserved characters stay, every other byte is %XX.
std::string url_segment(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~')
      out += char(c);
    else
      out += fmt::format("%{:02X}", unsigned(c));
  }
  return out;
}

}  // namespace

std::string index_html(const nlohmann::json& results) {
  using nlohmann::json;
  auto field = [](const json& j, const char* key, const char* where) -> const json& {
    SANF_CHECK(j.is_object() && j.contains(key), "index_html: results", where, " has no '", key, "'");
    return j.at(key);
  };
  auto metrics = [&](const json& j, const char* where) {
    std::string cells;
    for (const char* key : {"auroc", "auroc_z2", "aupr", "f1_max"})
      cells += "<td class=\"value\">" + fmt::format("{:.4f}", field(j, key, where).get<double>()) + "</td>";
    return cells;
  };
  const std::string dataset = field(results, "dataset", "").get<std::string>();
  const bool random = results.value("backbone_random", false), no_caff = results.value("no_caff", false);
  const std::string title = "sanf oneclass: " + dataset;
  std::string s = html_open(title);
  s += "<p>backbone " + html_escape(field(results, "backbone", "").get<std::string>()) +
       (random ? " (random weights, not pretrained)" : "") + ", " + cat(field(results, "epochs", "").get<int64_t>()) +
       " epochs" + (no_caff ? ", no CAFF" : "") + ". Each class in turn is the normal one; its name links to its report.</p>\n";
  s += "<table class=\"metrics\">\n<tr><th>class</th><th>name</th><th>AUROC</th><th>AUROC_z2</th><th>AUPR</th>"
       "<th>F1max</th></tr>\n";
  for (const json& row : field(results, "classes", "")) {
    std::string dir = field(row, "run", ".classes[]").get<std::string>();  // its last path component
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    dir.erase(0, dir.rfind('/') + 1);  // npos + 1 == 0: no slash, nothing erased
    s += "<tr><td class=\"value\">" + cat(field(row, "class", ".classes[]").get<int64_t>()) + "</td><td><a href=\"" +
         url_segment(dir) + "/report.html\">" + html_escape(field(row, "name", ".classes[]").get<std::string>()) +
         "</a></td>" + metrics(row, ".classes[]") + "</tr>\n";
  }
  s += "<tr class=\"mean\"><td>mean</td><td></td>" + metrics(field(results, "mean", ""), ".mean") + "</tr>\n";
  s += "</table>\n" + html_close("Written by sanf oneclass; the numbers are results.json's.");
  return s;
}

// ---- the scores CSV -------------------------------------------------------------------------------------

std::string csv_number(double v) { return fmt::format("{:.9g}", v); }

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void write_scores_csv(const std::string& path, const std::vector<int64_t>& indices,
                      const std::vector<int64_t>& labels, const std::vector<double>& nll_scores,
                      const std::vector<double>& z2_scores, const std::vector<std::string>& label_names,
                      const std::vector<int>& is_anomaly, const std::vector<std::string>& paths) {
  const size_t n = indices.size();
  SANF_CHECK(labels.size() == n && nll_scores.size() == n && z2_scores.size() == n && is_anomaly.size() == n &&
                 (paths.empty() || paths.size() == n),
             path, ": scores CSV needs one value per sample in each column, got ", n, " indices, ", labels.size(),
             " labels, ", is_anomaly.size(), " is_anomaly flags, ", nll_scores.size(), " NLL and ",
             z2_scores.size(), " z2 scores, ", paths.size(), " paths");
  std::string s = "index,label,label_name,is_anomaly,score_nll,score_z2,path\n";
  for (size_t i = 0; i < n; ++i) {
    SANF_CHECK(labels[i] >= 0 && labels[i] < int64_t(label_names.size()), path, ": sample ", i, " has label ",
               labels[i], " but there are ", label_names.size(), " class names");
    SANF_CHECK(is_anomaly[i] == 0 || is_anomaly[i] == 1, path, ": sample ", i, " has is_anomaly ", is_anomaly[i],
               " (must be 0 or 1)");
    s += cat(indices[i], ",", labels[i], ",", csv_field(label_names[size_t(labels[i])]), ",", is_anomaly[i], ",",
             csv_number(nll_scores[i]), ",", csv_number(z2_scores[i]), ",",
             paths.empty() ? std::string() : csv_field(paths[i]), "\n");
  }
  write_file_atomic(path, s);
}

}  // namespace sanf::apps
