// tests/apps/test_images.cpp: PNG and JPEG decoding (apps/image_io.h) on files the test writes itself with
// libpng and libjpeg (every PNG colour type, 1/2/8/16 bits, palette with transparency, interlaced; gray, RGB and
// CMYK JPEG), CMYK and YCCK JPEGs against Pillow's RGB of them (tests/fixtures/cmyk/), truncated and corrupt
// variants, and the `folder` and `mvtec` datasets built on them.
#include <doctest/doctest.h>
#include <png.h>
#include <unistd.h>

// clang-format off
#include <stdio.h>  // jpeglib.h needs FILE declared first
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "apps/datasets.h"
#include "apps/image_io.h"
#include "core/atomic_file.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using sanf::testing::TempDir;
using sanf::testing::write_file;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL("no error");
  } catch (const Error& e) {
    for (const std::string& frag : fragments) {
      CAPTURE(frag);
      CHECK_MESSAGE(std::string(e.what()).find(frag) != std::string::npos, std::string(e.what()));
    }
  }
}

// ---- writers (libpng / libjpeg used directly, so the reader is not tested against itself) -------------------

struct PngSpec {
  int width = 0, height = 0, bit_depth = 8, color_type = PNG_COLOR_TYPE_RGB;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<png_byte> trans;  // palette transparency (tRNS)
};

// Plain C-style: the default libpng error handling (abort) is fine in a test writer.
void png_write_raw(const char* path, const PngSpec* s, const unsigned char* rows_data, size_t rowbytes) {
  FILE* fp = fopen(path, "wb");
  REQUIRE(fp != nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, fp);
  png_set_IHDR(png, info, png_uint_32(s->width), png_uint_32(s->height), s->bit_depth, s->color_type,
               s->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s->palette.empty()) png_set_PLTE(png, info, s->palette.data(), int(s->palette.size()));
  if (!s->trans.empty()) png_set_tRNS(png, info, s->trans.data(), int(s->trans.size()), nullptr);
  png_write_info(png, info);
  std::vector<png_bytep> rows(static_cast<size_t>(s->height));
  for (int y = 0; y < s->height; ++y) rows[size_t(y)] = const_cast<png_bytep>(rows_data + size_t(y) * rowbytes);
  png_write_image(png, rows.data());  // handles the Adam7 passes itself when interlaced
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  fclose(fp);
}

// samples: per pixel, per channel, in the file's sample order, each 0..2^bit_depth-1; packed here.
void write_png_samples(const fs::path& path, const PngSpec& s, int channels, const std::vector<int>& samples) {
  REQUIRE(samples.size() == size_t(s.width * s.height * channels));
  const size_t rowbits = size_t(s.width * channels * s.bit_depth), rowbytes = (rowbits + 7) / 8;
  std::vector<unsigned char> data(rowbytes * size_t(s.height), 0);
  for (int y = 0; y < s.height; ++y)
    for (int k = 0; k < s.width * channels; ++k) {
      const int v = samples[size_t(y * s.width * channels + k)];
      unsigned char* row = data.data() + size_t(y) * rowbytes;
      if (s.bit_depth == 16) {
        row[2 * k] = (unsigned char)(v >> 8), row[2 * k + 1] = (unsigned char)(v & 0xff);
      } else if (s.bit_depth == 8) {
        row[k] = (unsigned char)v;
      } else {  // 1, 2, 4 bits, most significant first
        const int bit = k * s.bit_depth, shift = 8 - s.bit_depth - bit % 8;
        row[bit / 8] |= (unsigned char)(v << shift);
      }
    }
  fs::create_directories(path.parent_path());
  png_write_raw(path.c_str(), &s, data.data(), rowbytes);
}

// Interleaved (H, W, C) 8-bit samples to a JPEG; C = 1 (gray), 3 (RGB) or 4 (CMYK).
void write_jpeg(const fs::path& path, int w, int h, int channels, const std::vector<unsigned char>& hwc,
                int quality = 95) {
  fs::create_directories(path.parent_path());
  FILE* fp = fopen(path.c_str(), "wb");
  REQUIRE(fp != nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, fp);
  c.image_width = JDIMENSION(w), c.image_height = JDIMENSION(h), c.input_components = channels;
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c);
  if (channels == 4) jpeg_set_colorspace(&c, JCS_CMYK);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(hwc.data() + size_t(c.next_scanline) * size_t(w * channels));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(fp);
}

// A smooth test pattern (JPEG-friendly): sample (y, x, c).
unsigned char smooth(int y, int x, int c) { return (unsigned char)(40 + 4 * x + 3 * y + 30 * c); }

std::vector<unsigned char> smooth_hwc(int w, int h, int channels) {
  std::vector<unsigned char> v;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) v.push_back(smooth(y, x, c));
  return v;
}

// u8 (C, H, W) tensor from a function of (c, y, x).
Tensor make_image(int64_t C, int64_t H, int64_t W, const std::function<int(int64_t, int64_t, int64_t)>& f) {
  Tensor t = Tensor::empty({C, H, W}, DType::U8);
  auto* p = t.data<uint8_t>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) p[(c * H + y) * W + x] = uint8_t(f(c, y, x));
  return t;
}

// Value (c, y, x) of a u8 (C, H, W) tensor.
int px(const Tensor& t, int64_t c, int64_t y, int64_t x) {
  return t.data<uint8_t>()[(c * t.size(1) + y) * t.size(2) + x];
}

void check_equal(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == DType::U8);
  int bad = 0;
  for (int64_t c = 0; c < want.size(0); ++c)
    for (int64_t y = 0; y < want.size(1); ++y)
      for (int64_t x = 0; x < want.size(2); ++x)
        if (px(got, c, y, x) != px(want, c, y, x) && bad++ < 5)
          FAIL_CHECK(cat("pixel (", c, ", ", y, ", ", x, "): got ", px(got, c, y, x), ", want ", px(want, c, y, x)));
  CHECK(bad == 0);
}

// A small valid PNG (RGB 8-bit, 6x5), written by write_png.
fs::path small_png(const fs::path& p, int w = 6, int h = 5, int seed = 0) {
  fs::create_directories(p.parent_path());
  write_png(p.string(),
            make_image(3, h, w, [&](int64_t c, int64_t y, int64_t x) { return int(seed + 50 * c + 9 * y + x); }));
  return p;
}

}  // namespace

// ---- PNG ---------------------------------------------------------------------------------------------------

TEST_CASE("images: write_png and encode_png round-trip gray, RGB and RGBA exactly") {
  TempDir d("roundtrip");
  for (int64_t C : {1, 3, 4}) {
    CAPTURE(C);
    Tensor img =
        make_image(C, 7, 9, [](int64_t c, int64_t y, int64_t x) { return int((c * 97 + y * 31 + x * 7) % 256); });
    const fs::path p = d.path / cat("rt", C, ".png");
    write_png(p.string(), img);
    CHECK(!fs::exists(temp_path_for(p.string())));
    Tensor got = read_image(p.string());
    check_equal(got,
                C == 4 ? make_image(3, 7, 9, [&](int64_t c, int64_t y, int64_t x) { return px(img, c, y, x); }) : img);
    const std::string bytes = encode_png(img);
    CHECK(bytes == read_bytes(p));
    CHECK(bytes.substr(1, 3) == "PNG");
    check_equal(decode_image(bytes.data(), bytes.size(), "mem"), got);
  }
  // non-contiguous input: a transposed view is encoded as its values, not its storage order
  Tensor img = make_image(1, 4, 6, [](int64_t, int64_t y, int64_t x) { return int(y * 10 + x); });
  Tensor t = img.as_strided({1, 6, 4}, {24, 1, 6}, 0);
  check_equal(decode_image(encode_png(t).data(), encode_png(t).size(), "mem"),
              make_image(1, 6, 4, [](int64_t, int64_t y, int64_t x) { return int(x * 10 + y); }));
  expect_error([] { encode_png(Tensor::empty({2, 3, 3}, DType::U8)); }, {"1, 3 or 4 channels"});
  expect_error([] { encode_png(Tensor::empty({3, 4, 4}, DType::F32)); }, {"u8 image"});
  expect_error([&] { write_png((d.path / "no_such_dir" / "x.png").string(), img); }, {"no_such_dir"});
}

TEST_CASE("images: PNG 8-bit gray, gray+alpha, RGB, RGBA decode exactly (alpha dropped)") {
  TempDir d("png8");
  const int W = 5, H = 4;
  struct Case {
    int color_type, channels, out_channels;
  };
  for (Case k : {Case{PNG_COLOR_TYPE_GRAY, 1, 1}, Case{PNG_COLOR_TYPE_GRAY_ALPHA, 2, 1}, Case{PNG_COLOR_TYPE_RGB, 3, 3},
                 Case{PNG_COLOR_TYPE_RGB_ALPHA, 4, 3}}) {
    for (bool interlaced : {false, true}) {
      CAPTURE(k.color_type);
      CAPTURE(interlaced);
      PngSpec s;
      s.width = W, s.height = H, s.color_type = k.color_type, s.interlaced = interlaced;
      auto val = [&](int64_t c, int64_t y, int64_t x) { return int((c * 61 + y * 17 + x * 29 + 3) % 256); };
      std::vector<int> samples;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          for (int c = 0; c < k.channels; ++c) samples.push_back(val(c, y, x));
      const fs::path p = d.path / cat("t", k.color_type, interlaced ? "i" : "", ".png");
      write_png_samples(p, s, k.channels, samples);
      check_equal(read_image(p.string()), make_image(k.out_channels, H, W, val));
    }
  }
}

TEST_CASE("images: PNG 16-bit is scaled to 8 bits with rounding") {
  TempDir d("png16");
  const int W = 6, H = 3;
  // values around the rounding points: v / 257 with fractional parts just under and over one half
  auto val16 = [](int64_t c, int64_t y, int64_t x) { return int((((c * 7 + y * 6 + x) * 9973) % 65536)); };
  auto want8 = [&](int64_t c, int64_t y, int64_t x) { return int(std::lround(val16(c, y, x) * 255.0 / 65535.0)); };
  for (auto [color_type, channels, out] :
       {std::tuple{PNG_COLOR_TYPE_GRAY, 1, 1}, std::tuple{PNG_COLOR_TYPE_RGB, 3, 3},
        std::tuple{PNG_COLOR_TYPE_GRAY_ALPHA, 2, 1}, std::tuple{PNG_COLOR_TYPE_RGB_ALPHA, 4, 3}}) {
    for (bool interlaced : {false, true}) {
      CAPTURE(color_type);
      CAPTURE(interlaced);
      PngSpec s;
      s.width = W, s.height = H, s.bit_depth = 16, s.color_type = color_type, s.interlaced = interlaced;
      std::vector<int> samples;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          for (int c = 0; c < channels; ++c) samples.push_back(val16(c, y, x));
      const fs::path p = d.path / cat("s", color_type, interlaced ? "i" : "", ".png");
      write_png_samples(p, s, channels, samples);
      check_equal(read_image(p.string()), make_image(out, H, W, want8));
    }
  }
  // the extremes and a value exactly between two 8-bit levels' midpoints
  PngSpec s;
  s.width = 4, s.height = 1, s.bit_depth = 16, s.color_type = PNG_COLOR_TYPE_GRAY;
  write_png_samples(d.path / "ext.png", s, 1, {0, 65535, 128, 129});  // 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1
  check_equal(read_image((d.path / "ext.png").string()), make_image(1, 1, 4, [](int64_t, int64_t, int64_t x) {
                return std::vector<int>{0, 255, 0, 1}[size_t(x)];
              }));
}

TEST_CASE("images: PNG low bit depths and palettes (with transparency) expand to 8-bit gray and RGB") {
  TempDir d("pngpal");
  const int W = 7, H = 3;
  for (int depth : {1, 2, 4}) {
    CAPTURE(depth);
    const int levels = (1 << depth) - 1;
    auto idx = [&](int64_t y, int64_t x) { return int((y * W + x) * 5 % (levels + 1)); };
    PngSpec g;
    g.width = W, g.height = H, g.bit_depth = depth, g.color_type = PNG_COLOR_TYPE_GRAY, g.interlaced = depth == 2;
    std::vector<int> samples;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) samples.push_back(idx(y, x));
    write_png_samples(d.path / cat("g", depth, ".png"), g, 1, samples);
    check_equal(read_image((d.path / cat("g", depth, ".png")).string()),
                make_image(1, H, W, [&](int64_t, int64_t y, int64_t x) { return idx(y, x) * 255 / levels; }));

    PngSpec p = g;
    p.color_type = PNG_COLOR_TYPE_PALETTE;
    for (int k = 0; k <= levels; ++k)
      p.palette.push_back(png_color{png_byte(10 + 3 * k), png_byte(200 - 5 * k), png_byte(k * 16 % 256)});
    if (depth == 4) p.trans = {0, 128, 255, 7};  // transparency on some entries: dropped like any alpha
    const fs::path path = d.path / cat("p", depth, ".png");
    write_png_samples(path, p, 1, samples);
    check_equal(read_image(path.string()), make_image(3, H, W, [&](int64_t c, int64_t y, int64_t x) {
                  const png_color& col = p.palette[size_t(idx(y, x))];
                  return int(c == 0 ? col.red : c == 1 ? col.green : col.blue);
                }));
  }
}

TEST_CASE("images: PNG errors name the file and say what is wrong") {
  TempDir d("pngbad");
  const std::string good = read_bytes(small_png(d.path / "good.png", 16, 16));
  auto bad = [&](const std::string& name, const std::string& bytes) {
    write_file(d.path / name, bytes);
    return (d.path / name).string();
  };
  const std::string text = bad("text.png", "hello, I am not an image\n");
  expect_error([&] { read_image(text); }, {text, "not a PNG or JPEG image", "68 65 6c 6c 6f 2c 20 49"});
  const std::string empty = bad("empty.png", "");
  expect_error([&] { read_image(empty); }, {empty, "not a PNG or JPEG image (the file is empty)"});
  expect_error([&] { read_image((d.path / "missing.png").string()); }, {"missing.png", "cannot open"});
  // cut in the middle of the image data, just before IEND, and right after the signature
  for (size_t keep : {good.size() / 2, good.size() - 12, size_t(8), size_t(20)}) {
    CAPTURE(keep);
    const std::string cut = bad("cut.png", good.substr(0, keep));
    expect_error([&] { read_image(cut); }, {cut, "truncated PNG"});
  }
  // corrupt bytes in the middle (inside the IDAT chunk): zlib or the chunk's CRC check fails
  std::string corrupt = good;
  for (size_t i = good.size() / 2; i < good.size() / 2 + 4; ++i) corrupt[i] = char(corrupt[i] ^ 0x5a);
  const std::string cpath = bad("corrupt.png", corrupt);
  expect_error([&] { read_image(cpath); }, {cpath, "corrupt PNG"});
  // a wrong CRC on an otherwise intact chunk (IEND's, the last 4 bytes)
  std::string crc = good;
  crc[crc.size() - 1] = char(crc[crc.size() - 1] ^ 1);
  const std::string crcpath = bad("crc.png", crc);
  expect_error([&] { read_image(crcpath); }, {crcpath, "corrupt PNG", "CRC error"});
  // a broken header: bit depth 3 does not exist (the IHDR CRC is left wrong too, which libpng reports first)
  std::string hdr = good;
  hdr[24] = 3;
  const std::string hpath = bad("hdr.png", hdr);
  expect_error([&] { read_image(hpath); }, {hpath, "corrupt PNG"});
}

// ---- JPEG --------------------------------------------------------------------------------------------------

TEST_CASE("images: JPEG gray and RGB decode close to what was written") {
  TempDir d("jpeg");
  const int W = 24, H = 16;
  for (int channels : {1, 3}) {
    CAPTURE(channels);
    const fs::path p = d.path / cat("j", channels, ".jpg");
    write_jpeg(p, W, H, channels, smooth_hwc(W, H, channels));
    Tensor t = read_image(p.string());
    REQUIRE(t.shape() == Shape{channels, H, W});
    int worst = 0;
    double sum = 0;
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const int diff = std::abs(px(t, c, y, x) - smooth(y, x, c));
          worst = std::max(worst, diff), sum += diff;
        }
    CHECK(worst <= 8);
    CHECK(sum / (channels * H * W) <= 2.0);
  }
}

// tests/fixtures/cmyk/<name>.jpg and Pillow's RGB of it (<name>.rgb, H x W x 3 interleaved), written by
// tests/fixtures/make_cmyk_fixtures.py with Debian 12's Pillow 9.4.0 on libjpeg-turbo 2.1.5 — the library this
// build decodes with (same IDCT, same upsampling), so the comparison is exact: tolerance 0.
TEST_CASE("images: CMYK and YCCK JPEGs decode to exactly Pillow's RGB") {
  const fs::path dir = fs::path(SANF_FIXTURES_DIR) / "cmyk";
  for (const std::string name : {"cmyk_adobe", "cmyk_noadobe", "ycck"}) {
    CAPTURE(name);
    const std::string rgb = read_bytes(dir / (name + ".rgb"));
    REQUIRE(rgb.size() == 24 * 16 * 3);
    const Tensor want = make_image(3, 16, 24, [&](int64_t c, int64_t y, int64_t x) {
      return int(static_cast<unsigned char>(rgb[size_t((y * 24 + x) * 3 + c)]));
    });
    check_equal(read_image((dir / (name + ".jpg")).string()), want);
  }
}

TEST_CASE("images: a CMYK JPEG written by libjpeg follows Pillow's formula on its decoded samples") {
  // Flat 16x16 CMYK blocks (no IDCT error at q100 beyond +-1), one per (c, k) pair, read back as Adobe-inverted.
  TempDir d("cmyk");
  const std::vector<std::pair<int, int>> ck = {{0, 0}, {255, 255}, {0, 255}, {255, 0}, {200, 128}, {64, 30}};
  const int W = 16, H = 16 * int(ck.size());
  std::vector<unsigned char> hwc;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const auto [c, k] = ck[size_t(y / 16)];
      for (int v : {c, c, c, k}) hwc.push_back((unsigned char)v);
    }
  write_jpeg(d.path / "cmyk.jpg", W, H, 4, hwc, 100);
  const Tensor t = read_image((d.path / "cmyk.jpg").string());
  REQUIRE(t.shape() == Shape{3, H, W});
  for (size_t i = 0; i < ck.size(); ++i) {
    const int c = ck[i].first, k = ck[i].second;
    const int tt = (255 - c) * k + 128, want = k - (((tt >> 8) + tt) >> 8);
    CAPTURE(c);
    CAPTURE(k);
    for (int ch = 0; ch < 3; ++ch) CHECK(std::abs(px(t, ch, int64_t(i) * 16 + 8, 8) - want) <= 1);
  }
}

TEST_CASE("images: the decoder is chosen by content, not by extension") {
  TempDir d("magic");
  const std::string png = read_bytes(small_png(d.path / "a.png"));
  write_file(d.path / "png_named.jpg", png);
  CHECK(read_image((d.path / "png_named.jpg").string()).shape() == Shape{3, 5, 6});
  write_jpeg(d.path / "b.jpg", 8, 8, 1, smooth_hwc(8, 8, 1));
  write_file(d.path / "jpeg_named.png", read_bytes(d.path / "b.jpg"));
  CHECK(read_image((d.path / "jpeg_named.png").string()).shape() == Shape{1, 8, 8});
}

TEST_CASE("images: JPEG errors name the file and say what is wrong") {
  TempDir d("jpegbad");
  write_jpeg(d.path / "good.jpg", 64, 48, 3, smooth_hwc(64, 48, 3), 90);
  const std::string good = read_bytes(d.path / "good.jpg");
  auto bad = [&](const std::string& name, const std::string& bytes) {
    write_file(d.path / name, bytes);
    return (d.path / name).string();
  };
  for (size_t keep : {good.size() / 2, good.size() - 2, size_t(3), size_t(100)}) {  // in the scan, before EOI, header
    CAPTURE(keep);
    const std::string cut = bad("cut.jpg", good.substr(0, keep));
    expect_error([&] { read_image(cut); }, {cut, "truncated JPEG"});
  }
  // corrupt bytes in the middle of the entropy-coded data: a marker where none may be
  std::string corrupt = good;
  const size_t mid = good.size() * 3 / 4;
  corrupt[mid] = char(0xff), corrupt[mid + 1] = char(0xd3);  // a restart marker in a file without restarts
  const std::string cpath = bad("corrupt.jpg", corrupt);
  expect_error([&] { read_image(cpath); }, {cpath, "corrupt JPEG"});
  // garbage right after the start-of-image marker
  const std::string gpath = bad("garbage.jpg", std::string("\xff\xd8\xff\x01", 4) + std::string(200, '\x37'));
  expect_error([&] { read_image(gpath); }, {gpath, "JPEG"});
}

// ---- folder and mvtec datasets -----------------------------------------------------------------------------

TEST_CASE("image datasets: folder layout gives sorted classes, labels, order and per-file sizes") {
  TempDir d("folder");
  const fs::path r = d.path;
  small_png(r / "train" / "cat" / "b.png", 5, 7, 1);
  write_jpeg(r / "train" / "cat" / "a.JPG", 8, 6, 1, smooth_hwc(8, 6, 1));
  small_png(r / "train" / "cat" / ".hidden.png");
  write_file(r / "train" / "cat" / "notes.txt", "ignored");
  small_png(r / "train" / "dog" / "x.png", 3, 4, 2);
  small_png(r / "train" / "loose.png");       // directly under train/: ignored
  small_png(r / "train" / ".git" / "y.png");  // hidden directory: ignored
  small_png(r / "test" / "cat" / "c.png", 9, 9, 3);
  write_jpeg(r / "test" / "bird" / "d.jpeg", 10, 12, 3, smooth_hwc(10, 12, 3));
  fs::create_directories(r / "test" / "empty_class");

  auto train = open_dataset("folder", r.string(), Split::Train);
  const std::vector<std::string> names = {"bird", "cat", "dog", "empty_class"};
  CHECK(train->class_names() == names);
  REQUIRE(train->size() == 3);
  CHECK(train->skipped() == 0);
  CHECK(train->label(0) == 1);
  CHECK(train->label(1) == 1);
  CHECK(train->label(2) == 2);
  CHECK(train->describe(0) == (r / "train" / "cat" / "a.JPG").string());
  CHECK(train->describe(1) == (r / "train" / "cat" / "b.png").string());
  CHECK(train->path(1) == (r / "train" / "cat" / "b.png").string());  // scores.csv's path column
  CHECK(train->image(0).shape() == Shape{1, 6, 8});
  CHECK(train->image(1).shape() == Shape{3, 7, 5});
  CHECK(train->image(2).shape() == Shape{3, 4, 3});
  CHECK(px(train->image(2), 1, 2, 1) == 2 + 50 + 18 + 1);

  auto test = open_dataset("folder", r.string(), Split::Test);
  CHECK(test->class_names() == names);
  REQUIRE(test->size() == 2);
  CHECK(test->label(0) == 0);
  CHECK(test->label(1) == 1);
  CHECK(test->image(0).shape() == Shape{3, 12, 10});
  CHECK(test->image(1).shape() == Shape{3, 9, 9});
}

TEST_CASE("image datasets: mvtec layout puts good first as label 0 and ignores ground_truth") {
  TempDir d("mvtec");
  const fs::path r = d.path / "bottle";
  small_png(r / "train" / "good" / "001.png", 8, 8, 1);
  small_png(r / "train" / "good" / "000.png", 6, 6, 0);
  small_png(r / "test" / "good" / "000.png", 5, 5);
  small_png(r / "test" / "scratch" / "000.png", 7, 5);
  small_png(r / "test" / "broken_large" / "001.png", 4, 4);
  small_png(r / "test" / "broken_large" / "000.png", 4, 6);
  small_png(r / "ground_truth" / "scratch" / "000_mask.png");
  write_file(r / "license.txt", "CC BY-NC-SA 4.0");

  const std::vector<std::string> names = {"good", "broken_large", "scratch"};
  auto train = open_dataset("mvtec", r.string(), Split::Train);
  CHECK(train->class_names() == names);
  REQUIRE(train->size() == 2);
  CHECK(train->label(0) == 0);
  CHECK(train->label(1) == 0);
  CHECK(train->describe(0) == (r / "train" / "good" / "000.png").string());
  CHECK(train->image(1).shape() == Shape{3, 8, 8});

  auto test = open_dataset("mvtec", r.string(), Split::Test);
  CHECK(test->class_names() == names);
  REQUIRE(test->size() == 4);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < test->size(); ++i) labels.push_back(test->label(i));
  CHECK(labels == std::vector<int64_t>{0, 1, 1, 2});
  CHECK(test->describe(1) == (r / "test" / "broken_large" / "000.png").string());
  CHECK(test->image(1).shape() == Shape{3, 6, 4});
  CHECK(test->image(3).shape() == Shape{3, 5, 7});

  // the MVTec root instead of one category
  expect_error([&] { open_dataset("mvtec", d.str(), Split::Train); },
               {(d.path / "train" / "good").string(), "one MVTec AD category"});
  fs::remove_all(r / "test");
  expect_error([&] { open_dataset("mvtec", r.string(), Split::Test); }, {(r / "test").string(), "directory missing"});
}

TEST_CASE("image datasets: missing and empty directories are errors naming them") {
  TempDir d("dirs");
  const fs::path r = d.path;
  fs::create_directories(r / "test" / "a");
  small_png(r / "test" / "a" / "x.png");
  expect_error([&] { open_dataset("folder", r.string(), Split::Train); },
               {(r / "train").string(), "directory missing"});
  fs::create_directories(r / "train");
  expect_error([&] { open_dataset("folder", r.string(), Split::Train); },
               {(r / "train").string(), "no class sub-directories"});
  fs::create_directories(r / "train" / "a");
  write_file(r / "train" / "a" / "readme.md", "not an image");
  expect_error([&] { open_dataset("folder", r.string(), Split::Train); },
               {(r / "train").string(), "no PNG or JPEG files"});
  fs::create_directories(r / "m" / "train" / "good");
  expect_error([&] { open_dataset("mvtec", (r / "m").string(), Split::Train); },
               {(r / "m" / "train" / "good").string(), "no PNG or JPEG files"});
  expect_error([&] { open_dataset("folder", (r / "nope").string(), Split::Train); }, {"nope", "does not exist"});
  const auto names = dataset_names();
  CHECK(std::find(names.begin(), names.end(), "folder") != names.end());
  CHECK(std::find(names.begin(), names.end(), "mvtec") != names.end());
}

TEST_CASE("image datasets: a corrupt file is an error on read, or skipped and counted with skip_corrupt") {
  TempDir d("corrupt");
  const fs::path r = d.path;
  small_png(r / "train" / "a" / "0.png");
  const std::string good = read_bytes(small_png(r / "train" / "a" / "1.png", 16, 16));
  write_file(r / "train" / "a" / "2.png", good.substr(0, good.size() / 2));  // truncated
  small_png(r / "train" / "b" / "3.png");
  write_file(r / "train" / "b" / "4.jpg", "plain text with a .jpg name");
  small_png(r / "train" / "b" / "5.png");

  auto all = open_dataset("folder", r.string(), Split::Train);  // listing only: opens fine
  REQUIRE(all->size() == 6);
  CHECK(all->skipped() == 0);
  CHECK(all->image(1).shape() == Shape{3, 16, 16});
  expect_error([&] { all->image(2); }, {(r / "train" / "a" / "2.png").string(), "truncated PNG"});
  expect_error([&] { all->image(4); }, {(r / "train" / "b" / "4.jpg").string(), "not a PNG or JPEG image"});

  DatasetOptions opt;
  opt.skip_corrupt = true;
  auto kept = open_dataset("folder", r.string(), Split::Train, opt);
  CHECK(kept->skipped() == 2);
  REQUIRE(kept->size() == 4);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < kept->size(); ++i) labels.push_back(kept->label(i));
  CHECK(labels == std::vector<int64_t>{0, 0, 1, 1});
  CHECK(kept->describe(2) == (r / "train" / "b" / "3.png").string());
  CHECK(kept->describe(3) == (r / "train" / "b" / "5.png").string());
  CHECK(kept->path(3) == (r / "train" / "b" / "5.png").string());  // the file, after the corrupt ones are dropped
  for (int64_t i = 0; i < kept->size(); ++i) CHECK(kept->image(i).dim() == 3);

  // mvtec too; and when every file is corrupt there is nothing left to use
  write_file(r / "m" / "train" / "good" / "0.png", "x");
  small_png(r / "m" / "train" / "good" / "1.png");
  auto m = open_dataset("mvtec", (r / "m").string(), Split::Train, opt);
  CHECK(m->skipped() == 1);
  CHECK(m->size() == 1);
  fs::remove(r / "m" / "train" / "good" / "1.png");
  expect_error([&] { open_dataset("mvtec", (r / "m").string(), Split::Train, opt); },
               {"all 1 images are corrupt", "0.png"});
}
