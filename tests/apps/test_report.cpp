// tests/apps/test_report.cpp: the report's pieces: base64 (RFC 4648 vectors), escaping, the SVG plots,
// the HTML document, the one-class index, the scores CSV, and atomic writing (no temporary left behind,
// failures leave nothing).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "apps/report.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using sanf::testing::TempDir;
using sanf::testing::read_file;

namespace {

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// The height attributes of the <rect class="bar CLASS"> elements, in order.
std::vector<double> bar_heights(const std::string& svg, const std::string& cls) {
  std::vector<double> h;
  const std::string tag = "<rect class=\"bar " + cls + "\"";
  for (size_t at = svg.find(tag); at != std::string::npos; at = svg.find(tag, at + 1)) {
    const size_t end = svg.find("/>", at);
    const size_t hat = svg.find("height=\"", at);
    REQUIRE(hat < end);
    h.push_back(std::stod(svg.substr(hat + 8)));
  }
  return h;
}

bool is_svg_document(const std::string& s) {
  return s.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0 && s.size() >= 7 &&
         s.compare(s.size() - 7, 7, "</svg>\n") == 0 && count(s, "<svg") == 1 && count(s, "</svg>") == 1;
}

const std::string kPng("\x89PNG\r\n\x1a\n" "rest-of-a-png", 21);

}  // namespace

TEST_CASE("report: base64 matches the RFC 4648 test vectors") {
  // RFC 4648 section 10.
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  // Bytes above 127 and zero bytes: 00000000 11111111 11111110 -> 000000 001111 111111 111110 = "AP/+".
  CHECK(base64_encode(std::string("\x00\xff\xfe", 3)) == "AP/+");
  // The PNG signature 89 50 4E 47 0D 0A 1A 0A.
  CHECK(base64_encode(std::string("\x89PNG\r\n\x1a\n", 8)) == "iVBORw0KGgo=");
}

TEST_CASE("report: HTML escaping") {
  CHECK(html_escape("<a href=\"x\">Tom & Jerry's</a>") ==
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  CHECK(html_escape("plain text, 0.5") == "plain text, 0.5");
  CHECK(html_escape("&amp;") == "&amp;amp;");  // escaping twice shows the text, it does not decode it
  CHECK(html_escape("") == "");
}

TEST_CASE("report: ROC SVG") {
  const std::vector<double> s = {0.1, 0.4, 0.4, 0.8};
  const std::vector<int> y = {0, 0, 1, 1};
  const std::string svg = roc_svg(roc_curve(s, y), auroc(s, y), "ROC <class 0> & co");
  CHECK(is_svg_document(svg));
  CHECK(count(svg, "AUROC = 0.8750") == 1);
  CHECK(count(svg, "ROC &lt;class 0&gt; &amp; co") == 1);  // the title, escaped
  CHECK(count(svg, "<class 0>") == 0);
  CHECK(count(svg, "<polyline") == 1);
  CHECK(count(svg, "false positive rate") == 1);
  CHECK(count(svg, ">0.2</text>") == 2);  // a tick label on each axis
  CHECK(count(svg, "http") == 1);         // only the xmlns: nothing external
  CHECK_THROWS_AS(roc_svg(RocCurve{}, 0.5, "empty"), Error);

  // Points that add nothing are dropped: 1000 distinct scores perfectly separated give the curve
  // (0,0) -> (0,0.002) -> ... -> (0,1) -> (0.002,1) -> ... -> (1,1), drawn as its 3 corners.
  std::vector<double> many_s(1000);
  std::vector<int> many_y(1000);
  for (int i = 0; i < 1000; ++i) {
    many_s[size_t(i)] = i;
    many_y[size_t(i)] = i >= 500;
  }
  const std::string many = roc_svg(roc_curve(many_s, many_y), 1.0, "many");
  CHECK(is_svg_document(many));
  const size_t at = many.find("points=\"");
  REQUIRE(at != std::string::npos);
  const std::string points = many.substr(at + 8, many.find('"', at + 8) - at - 8);
  CHECK(count(points, ",") == 3);
  CHECK(count(many, "AUROC = 1.0000") == 1);
}

TEST_CASE("report: histogram SVG has one bar per bin and class, normalised to density") {
  // 6 normal scores in [0, 1] and 2 anomalous ones at 4 and 5.
  const std::vector<double> s = {0, 0.2, 0.5, 0.5, 0.9, 1.0, 4.0, 5.0};
  const std::vector<int> y = {0, 0, 0, 0, 0, 0, 1, 1};
  const std::string svg = histogram_svg(s, y, "scores of \"class 0\"");
  CHECK(is_svg_document(svg));
  CHECK(count(svg, "<rect class=\"bar normal\"") == 40);
  CHECK(count(svg, "<rect class=\"bar anomalous\"") == 40);
  CHECK(count(svg, "normal (n = 6)") == 1);
  CHECK(count(svg, "anomalous (n = 2)") == 1);
  CHECK(count(svg, "scores of &quot;class 0&quot;") == 1);
  CHECK(count(histogram_svg(s, y, "t", 7), "class=\"bar ") == 14);

  // Density, not counts: 4 normal samples all in the first bin and 1 anomalous sample in the last bin give
  // both classes the same density, 1 / bin width, so the two tallest bars are equally tall.
  const std::string d = histogram_svg({0, 0, 0, 0, 1}, {0, 0, 0, 0, 1}, "density", 5);
  std::vector<double> hn = bar_heights(d, "normal"), ha = bar_heights(d, "anomalous");
  REQUIRE(hn.size() == 5);
  REQUIRE(ha.size() == 5);
  CHECK(hn[0] > 100);
  CHECK(hn[0] == ha[4]);
  CHECK(hn[4] == 0);
  CHECK(ha[0] == 0);

  // One class only still draws (its bars only); a single repeated value still has a range.
  const std::string one = histogram_svg({2, 2, 2}, {0, 0, 0}, "one", 10);
  CHECK(is_svg_document(one));
  CHECK(count(one, "class=\"bar normal\"") == 10);
  CHECK(count(one, "class=\"bar anomalous\"") == 0);

  CHECK(count(svg, "not shown") == 0);  // 8 scores: all drawn

  CHECK_THROWS_WITH_AS(histogram_svg({1, 2}, {0}, "t"), doctest::Contains("2 scores but 1 labels"), Error);
  CHECK_THROWS_WITH_AS(histogram_svg({1, std::numeric_limits<double>::quiet_NaN()}, {0, 1}, "t"),
                       doctest::Contains("score at index 1 is nan"), Error);
  CHECK_THROWS_WITH_AS(histogram_svg({1, 2}, {0, 1}, "t", 0), doctest::Contains("bins"), Error);
}

TEST_CASE("report: histogram bins cover the bulk, extreme scores are counted in a note, not drawn") {
  // 1000 normal scores spread evenly over [0, 10), 1000 anomalous over [5, 15): they overlap on [5, 10).
  // Then 3 normal scores far below and 4 anomalous + 1 normal far above, as a few broken images give.
  std::vector<double> s;
  std::vector<int> y;
  for (int i = 0; i < 1000; ++i) s.push_back(i / 100.0), y.push_back(0);
  for (int i = 0; i < 1000; ++i) s.push_back(5 + i / 100.0), y.push_back(1);
  for (double v : {-1e5, -2e4, -3e3}) s.push_back(v), y.push_back(0);
  for (double v : {1e6, 2e6, 5e5, 9e4}) s.push_back(v), y.push_back(1);
  s.push_back(7e4), y.push_back(0);
  const std::string svg = histogram_svg(s, y, "bulk");
  CHECK(is_svg_document(svg));
  CHECK(count(svg, "class=\"outliers\"") == 1);
  CHECK(count(svg, ">not shown: 3 scores below 0 (3 normal), 5 scores above 14.99 (1 normal, 4 anomalous)</text>") == 1);
  // The bins span [0, 14.99]: the normal class fills the first 2/3 of the 40 bins, the anomalous class the
  // last 2/3 (with all scores in one range the bulk would sit in a single bin), and they overlap in the middle.
  const std::vector<double> hn = bar_heights(svg, "normal"), ha = bar_heights(svg, "anomalous");
  REQUIRE(hn.size() == 40);
  REQUIRE(ha.size() == 40);
  int normal_bins = 0, anomalous_bins = 0, both = 0;
  for (size_t b = 0; b < 40; ++b) {
    normal_bins += hn[b] > 0, anomalous_bins += ha[b] > 0, both += hn[b] > 0 && ha[b] > 0;
  }
  CHECK(normal_bins >= 26);
  CHECK(anomalous_bins >= 26);
  CHECK(both >= 12);
  CHECK(count(svg, ">14</text>") == 1);  // an x tick near the top of the bulk; none out at 1e6
  CHECK(count(svg, ">1000000</text>") == 0);
  CHECK(count(svg, "normal (n = 1004)") == 1);  // the legend counts every score
  CHECK(count(svg, "anomalous (n = 1004)") == 1);

  // Only one side clipped: the note says so and nothing about the other.
  std::vector<double> s2(s.begin(), s.begin() + 2000);
  std::vector<int> y2(y.begin(), y.begin() + 2000);
  s2.push_back(1e9), y2.push_back(1);
  CHECK(count(histogram_svg(s2, y2, "one side"), ">not shown: 1 score above 14.99 (1 anomalous)</text>") == 1);
}

TEST_CASE("report: the HTML document is self-contained and escapes all text") {
  const std::vector<double> s = {0.1, 0.4, 0.4, 0.8};
  const std::vector<int> y = {0, 0, 1, 1};
  ReportInput in;
  in.title = "fashion-mnist <class 0> & \"friends\"";
  in.metrics = {{"AUROC (NLL)", "0.8750"}, {"samples <test>", "4"}};
  in.roc_svg = roc_svg(roc_curve(s, y), auroc(s, y), "ROC");
  in.histogram_svg = histogram_svg(s, y, "scores");
  in.most_anomalous = {{kPng, "#3 bag (anomalous), score 0.8"}, {kPng, "<script>alert(1)</script>"}};
  in.most_normal = {};
  const std::string html = report_html(in);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<title>fashion-mnist &lt;class 0&gt; &amp; &quot;friends&quot;</title>") == 1);
  CHECK(count(html, "<h1>fashion-mnist &lt;class 0&gt; &amp; &quot;friends&quot;</h1>") == 1);
  CHECK(count(html, "samples &lt;test&gt;") == 1);
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "&lt;script&gt;alert(1)&lt;/script&gt;") == 2);  // alt text and caption
  CHECK(count(html, "src=\"data:image/png;base64," + base64_encode(kPng) + "\"") == 2);
  CHECK(count(html, "<svg") == 2);
  CHECK(count(html, "AUROC = 0.8750") == 1);
  CHECK(count(html, "<style>") == 1);
  CHECK(count(html, "<link") == 0);
  CHECK(count(html, "(none)") == 1);  // no "most normal" thumbnails
  CHECK(html.compare(html.size() - 8, 8, "</html>\n") == 0);

  ReportInput bad = in;
  bad.most_normal = {{"GIF89a....", "#9 not a png"}};
  CHECK_THROWS_WITH_AS(report_html(bad), doctest::Contains("#9 not a png) is not a PNG file"), Error);
  bad = in;
  bad.roc_svg = "<script>x</script>";
  CHECK_THROWS_WITH_AS(report_html(bad), doctest::Contains("ROC plot is not an SVG document"), Error);
}

TEST_CASE("report: the one-class index links each class's report and escapes its text") {
  const nlohmann::json results = {
      {"dataset", "folder"},
      {"backbone", "runs/<vit>&b16.safetensors"},
      {"backbone_random", false},
      {"no_caff", true},
      {"epochs", 3},
      {"classes",
       {{{"class", 0}, {"name", "t-shirt"}, {"auroc", 0.91234}, {"auroc_z2", 0.5}, {"aupr", 0.25}, {"f1_max", 1.0},
         {"run", "/data/out/0-t-shirt"}},
        {{"class", 7}, {"name", "cats & <dogs> #1 100%"}, {"auroc", 0.12345}, {"auroc_z2", 0.99999},
         {"aupr", 0.00004}, {"f1_max", 0.33333}, {"run", "out/7-cats & <dogs> #1 100%/"}}}},
      {"mean", {{"auroc", 0.517895}, {"auroc_z2", 0.749995}, {"aupr", 0.12502}, {"f1_max", 0.666665}}}};
  const std::string html = index_html(results);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<title>sanf oneclass: folder</title>") == 1);
  CHECK(count(html, "runs/&lt;vit&gt;&amp;b16.safetensors") == 1);
  CHECK(count(html, "<vit>") == 0);
  CHECK(count(html, "3 epochs, no CAFF") == 1);
  CHECK(count(html, "random weights") == 0);
  CHECK(count(html, "<th>AUROC_z2</th>") == 1);
  // Relative links to each run's report: the run directory's last component, percent-encoded.
  CHECK(count(html, "<a href=\"0-t-shirt/report.html\">t-shirt</a>") == 1);
  CHECK(count(html, "<a href=\"7-cats%20%26%20%3Cdogs%3E%20%231%20100%25/report.html\">"
                    "cats &amp; &lt;dogs&gt; #1 100%</a>") == 1);
  CHECK(count(html, "/data/out") == 0);
  // Numbers to 4 decimals, in order: class, name, AUROC, AUROC_z2, AUPR, F1max; then the mean row.
  CHECK(count(html, "<td class=\"value\">0.9123</td><td class=\"value\">0.5000</td><td class=\"value\">0.2500"
                    "</td><td class=\"value\">1.0000</td></tr>") == 1);
  CHECK(count(html, "<td class=\"value\">7</td>") == 1);
  CHECK(count(html, "<td class=\"value\">0.1235</td><td class=\"value\">1.0000</td><td class=\"value\">0.0000"
                    "</td><td class=\"value\">0.3333</td></tr>") == 1);
  CHECK(count(html, "<tr class=\"mean\"><td>mean</td><td></td><td class=\"value\">0.5179</td><td class=\"value\">"
                    "0.7500</td><td class=\"value\">0.1250</td><td class=\"value\">0.6667</td></tr>") == 1);
  CHECK(count(html, "<tr>") == 3);  // header + 2 classes
  CHECK(count(html, "http") == 0);  // nothing external
  nlohmann::json broken = results;
  broken["classes"][1].erase("run");
  CHECK_THROWS_WITH_AS(index_html(broken), doctest::Contains("results.classes[] has no 'run'"), Error);
}

TEST_CASE("report: files are written atomically") {
  TempDir dir("atomic");
  const fs::path p = dir.path / "report.html";
  write_file_atomic(p.string(), "first");
  write_file_atomic(p.string(), "second, longer");
  CHECK(read_file(p) == "second, longer");
  CHECK(list_dir(dir.path) == std::vector<std::string>{"report.html"});  // no temporary left behind

  ReportInput in;
  in.title = "t";
  write_report_html((dir.path / "r2.html").string(), in);
  CHECK(read_file(dir.path / "r2.html") == report_html(in));
  CHECK(list_dir(dir.path) == std::vector<std::string>{"r2.html", "report.html"});

  // A directory that does not exist: the error names the path, nothing is created.
  const std::string missing = (dir.path / "no-such-dir" / "report.html").string();
  CHECK_THROWS_WITH_AS(write_file_atomic(missing, "x"), doctest::Contains(missing.c_str()), Error);
  CHECK(list_dir(dir.path) == std::vector<std::string>{"r2.html", "report.html"});

  // The target is a directory: the temporary file is written, the rename fails, and the temporary is removed.
  fs::create_directory(dir.path / "taken");
  const std::string taken = (dir.path / "taken").string();
  CHECK_THROWS_WITH_AS(write_file_atomic(taken, "x"), doctest::Contains(taken.c_str()), Error);
  CHECK(list_dir(dir.path) == std::vector<std::string>{"r2.html", "report.html", "taken"});

  // A read-only directory (meaningless for root, who may write anyway).
  if (::geteuid() != 0) {
    fs::create_directory(dir.path / "ro");
    fs::permissions(dir.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    const std::string ro = (dir.path / "ro" / "report.html").string();
    CHECK_THROWS_WITH_AS(write_report_html(ro, in), doctest::Contains(ro.c_str()), Error);
    fs::permissions(dir.path / "ro", fs::perms::owner_all);
    CHECK(list_dir(dir.path / "ro").empty());
  }
}

TEST_CASE("report: scores CSV") {
  TempDir dir("csv");
  const fs::path p = dir.path / "scores.csv";
  const std::vector<std::string> names = {"t-shirt", "fruit, and \"veg\"", "bag"};
  write_scores_csv(p.string(), {0, 5, 17}, {0, 1, 2}, {0.1, 1234.5678901, double(0.1f)}, {1e-12, -2.5, 3},
                   names, {0, 1, 1});
  // %.9g: 0.1 -> 0.1; 1234.5678901 -> 1234.56789 (9 significant digits); the float 0.1f is
  // 0.100000001490116... -> 0.100000001, enough to read the float back exactly.
  // No paths (the binary datasets): the path column is there, empty.
  CHECK(read_file(p) ==
        "index,label,label_name,is_anomaly,score_nll,score_z2,path\n"
        "0,0,t-shirt,0,0.1,1e-12,\n"
        "5,1,\"fruit, and \"\"veg\"\"\",1,1234.56789,-2.5,\n"
        "17,2,bag,1,0.100000001,3,\n");
  CHECK(list_dir(dir.path) == std::vector<std::string>{"scores.csv"});
  // Image files (folder, mvtec): each row names its file, quoted where RFC 4180 says.
  write_scores_csv(p.string(), {0, 5}, {0, 1}, {1, 2}, {3, 4}, names, {0, 1},
                   {"data/test/good/000.png", "data/test/odd, \"name\".png"});
  CHECK(read_file(p) ==
        "index,label,label_name,is_anomaly,score_nll,score_z2,path\n"
        "0,0,t-shirt,0,1,3,data/test/good/000.png\n"
        "5,1,\"fruit, and \"\"veg\"\"\",1,2,4,\"data/test/odd, \"\"name\"\".png\"\n");
  CHECK_THROWS_WITH_AS(write_scores_csv(p.string(), {0, 1}, {0, 0}, {0, 0}, {0, 0}, names, {0, 1}, {"a.png"}),
                       doctest::Contains("1 paths"), Error);

  CHECK_THROWS_WITH_AS(write_scores_csv(p.string(), {0, 1}, {0}, {0, 0}, {0, 0}, names, {0, 1}),
                       doctest::Contains("2 indices, 1 labels"), Error);
  CHECK_THROWS_WITH_AS(write_scores_csv(p.string(), {0}, {3}, {0}, {0}, names, {1}),
                       doctest::Contains("sample 0 has label 3 but there are 3 class names"), Error);
  CHECK_THROWS_WITH_AS(write_scores_csv(p.string(), {0}, {1}, {0}, {0}, names, {2}),
                       doctest::Contains("is_anomaly 2"), Error);
  CHECK(read_file(p).rfind("index,label", 0) == 0);  // a failed call left the old file as it was
}
