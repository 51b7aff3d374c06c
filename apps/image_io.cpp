// apps/image_io.cpp: PNG (libpng) and JPEG (libjpeg-turbo) decoding, PNG encoding.
//
// Both libraries report errors by calling a callback that must not return. Throwing a C++ exception from it
// would unwind through C frames (undefined behaviour), so each library is driven from a C-style function
// (png_decode, png_encode, jpeg_decode) that calls setjmp, holds only plain data, and reports failure with a
// return code and a message buffer; its C++ caller turns that into a sanf::Error naming the file.
#include "apps/image_io.h"

#include "core/atomic_file.h"

// clang-format off
#include <png.h>
#include <stdio.h>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <setjmp.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <vector>

namespace sanf::apps {

namespace {

constexpr uint64_t kMaxPixels = uint64_t(1) << 28;
constexpr size_t kMessageSize = 256;

// ---- PNG decoding (C-style: no C++ objects live across setjmp/longjmp) -----------------------------------

struct PngDecode {
  const unsigned char* data;
  size_t size, pos;
  int truncated, too_large;
  char message[kMessageSize];
  unsigned char* pixels;  // malloc'ed, height rows of width * channels bytes
  png_bytep* rows;        // malloc'ed
  png_uint_32 width, height;
  int channels;
};

// error_ptr is a char[kMessageSize].
void png_on_error(png_structp png, png_const_charp msg) {
  std::snprintf(static_cast<char*>(png_get_error_ptr(png)), kMessageSize, "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, size_t n) {
  auto* d = static_cast<PngDecode*>(png_get_io_ptr(png));
  if (d->size - d->pos < n) {
    d->truncated = 1;
    png_error(png, "unexpected end of file");
  }
  std::memcpy(out, d->data + d->pos, n);
  d->pos += n;
}

int png_decode(PngDecode* d) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d->message, png_on_error, png_on_warning);
  if (png == nullptr) {
    std::snprintf(d->message, kMessageSize, "out of memory");
    return 0;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(d->message, kMessageSize, "out of memory");
    return 0;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::free(d->rows);
    std::free(d->pixels);
    d->rows = nullptr;
    d->pixels = nullptr;
    return 0;
  }
  png_set_read_fn(png, d, png_read_memory);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  d->width = w, d->height = h;
  if (uint64_t(w) * h > kMaxPixels) {
    d->too_large = 1;
    png_error(png, "image too large");
  }
  const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_scale_16(png);  // round(v * 255 / 65535)
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  d->channels = png_get_channels(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (png_get_bit_depth(png, info) != 8 || d->channels < 1 || d->channels > 4 ||
      rowbytes != size_t(w) * size_t(d->channels))
    png_error(png, "unexpected pixel layout after conversion to 8 bits");
  d->pixels = static_cast<unsigned char*>(std::malloc(rowbytes * h));
  d->rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * h));
  if (d->pixels == nullptr || d->rows == nullptr) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; ++y) d->rows[y] = d->pixels + size_t(y) * rowbytes;
  png_read_image(png, d->rows);
  png_read_end(png, nullptr);  // reads up to IEND: a file cut short anywhere fails
  png_destroy_read_struct(&png, &info, nullptr);
  std::free(d->rows);
  d->rows = nullptr;
  return 1;
}

// ---- PNG encoding ------------------------------------------------------------------------------------------

struct PngEncode {
  const png_bytep* rows;  // height rows of width * channels bytes
  png_uint_32 width, height;
  int color_type;
  unsigned char* out;  // malloc'ed
  size_t size, cap;
  char message[kMessageSize];
};

void png_write_memory(png_structp png, png_bytep data, size_t n) {
  auto* e = static_cast<PngEncode*>(png_get_io_ptr(png));
  if (e->cap - e->size < n) {
    size_t cap = e->cap ? e->cap : 4096;
    while (cap - e->size < n) cap *= 2;
    auto* grown = static_cast<unsigned char*>(std::realloc(e->out, cap));
    if (grown == nullptr) png_error(png, "out of memory");
    e->out = grown, e->cap = cap;
  }
  std::memcpy(e->out + e->size, data, n);
  e->size += n;
}
void png_flush_memory(png_structp) {}

int png_encode(PngEncode* e) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e->message, png_on_error, png_on_warning);
  if (png == nullptr) {
    std::snprintf(e->message, kMessageSize, "out of memory");
    return 0;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(e->message, kMessageSize, "out of memory");
    return 0;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return 0;
  }
  png_set_write_fn(png, e, png_write_memory, png_flush_memory);
  png_set_IHDR(png, info, e->width, e->height, 8, e->color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, const_cast<png_bytepp>(e->rows));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return 1;
}

// ---- JPEG decoding -----------------------------------------------------------------------------------------

struct JpegErrors {
  jpeg_error_mgr mgr;  // first, so the library's pointer to it is a pointer to this
  jmp_buf jump;
  int truncated;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

// Warnings (level -1) that mean the decoded pixels are wrong become errors; the rest, and traces, are ignored.
void jpeg_on_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  switch (c->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC:
      return;
    case JWRN_JPEG_EOF:
      e->truncated = 1;
      break;
    default:
      break;
  }
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

struct JpegDecode {
  const unsigned char* data;
  size_t size;
  jpeg_decompress_struct cinfo;  // here, not a local of jpeg_decode: it is still read after a longjmp
  JpegErrors errors;
  int unsupported_color, too_large;  // unsupported_color: the J_COLOR_SPACE + 1
  int components;                    // in the file, for the unsupported-colour-space message
  unsigned char* pixels;             // malloc'ed, height rows of width * channels bytes
  unsigned width, height;
  int channels;
};

int jpeg_decode(JpegDecode* d) {
  jpeg_decompress_struct& cinfo = d->cinfo;
  cinfo.err = jpeg_std_error(&d->errors.mgr);
  d->errors.mgr.error_exit = jpeg_on_error;
  d->errors.mgr.emit_message = jpeg_on_message;
  if (setjmp(d->errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(d->pixels);
    d->pixels = nullptr;
    return 0;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, d->data, static_cast<unsigned long>(d->size));
  jpeg_read_header(&cinfo, TRUE);
  d->width = cinfo.image_width, d->height = cinfo.image_height;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo.out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:  // libjpeg turns YCCK into (Adobe-inverted) CMYK itself; cmyk_to_rgb does the rest
      cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      d->unsupported_color = int(cinfo.jpeg_color_space) + 1;
      d->components = cinfo.num_components;
      jpeg_destroy_decompress(&cinfo);
      return 0;
  }
  if (uint64_t(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
    d->too_large = 1;
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  jpeg_start_decompress(&cinfo);
  d->width = cinfo.output_width, d->height = cinfo.output_height, d->channels = cinfo.output_components;
  const size_t rowbytes = size_t(d->width) * size_t(d->channels);
  d->pixels = static_cast<unsigned char*>(std::malloc(rowbytes * d->height + 1));
  if (d->pixels == nullptr) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = d->pixels + size_t(cinfo.output_scanline) * rowbytes;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);  // reads up to EOI: a file cut short anywhere fails
  jpeg_destroy_decompress(&cinfo);
  return 1;
}

// libjpeg's CMYK samples (n pixels, interleaved) to RGB in place, exactly as Pillow 9.4 does it: Pillow reads
// every 4-component JPEG as Adobe-inverted ("CMYK;I": C = 255 - c, whatever the APP14 marker says) and converts
// with Convert.c's cmyk2rgb, R = (255 - K) - MULDIV255(C, 255 - K). With Pillow's C = 255 - c and 255 - K = k
// that is R = k - MULDIV255(255 - c, k), always within 0..k (no clipping needed); likewise G from m, B from y.
void cmyk_to_rgb(unsigned char* px, size_t n) {
  auto muldiv255 = [](unsigned a, unsigned b) {
    const unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
  };
  for (size_t i = 0; i < n; ++i) {
    // Read the pixel's 4 bytes first: its 3 output bytes may overlap them, never a later pixel's (3i + 2 < 4i + 4).
    const unsigned c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2], k = px[4 * i + 3];
    unsigned char* out = px + 3 * i;
    out[0] = static_cast<unsigned char>(k - muldiv255(255 - c, k));
    out[1] = static_cast<unsigned char>(k - muldiv255(255 - m, k));
    out[2] = static_cast<unsigned char>(k - muldiv255(255 - y, k));
  }
}

// Interleaved (H, W, channels) bytes to u8 (C, H, W), C = 3 for RGB(A), 1 for gray(+alpha): alpha dropped.
Tensor planar(const unsigned char* px, int64_t h, int64_t w, int channels) {
  const int64_t C = channels >= 3 ? 3 : 1;
  Tensor t = Tensor::empty({C, h, w}, DType::U8);
  auto* out = t.data<uint8_t>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < h * w; ++i) out[c * h * w + i] = px[i * channels + c];
  return t;
}

Tensor decode_png_bytes(const unsigned char* data, size_t size, const std::string& name) {
  PngDecode d{};
  d.data = data, d.size = size;
  if (!png_decode(&d)) {
    SANF_CHECK(!d.truncated, name, ": truncated PNG (the file ends after ", size, " bytes, inside the image data)");
    SANF_CHECK(!d.too_large, name, ": PNG of ", d.width, "x", d.height, " pixels is too large (limit 2^28 pixels)");
    SANF_FAIL(name, ": corrupt PNG: ", d.message);
  }
  Tensor t = planar(d.pixels, d.height, d.width, d.channels);
  std::free(d.pixels);
  return t;
}

Tensor decode_jpeg_bytes(const unsigned char* data, size_t size, const std::string& name) {
  JpegDecode d{};
  d.data = data, d.size = size;
  if (!jpeg_decode(&d)) {
    SANF_CHECK(!d.errors.truncated, name, ": truncated JPEG (the file ends after ", size,
               " bytes, before the end-of-image marker)");
    SANF_CHECK(!d.too_large, name, ": JPEG of ", d.width, "x", d.height, " pixels is too large (limit 2^28 pixels)");
    if (d.unsupported_color) {
      const int cs = d.unsupported_color - 1;
      SANF_FAIL(name, ": JPEG with ", d.components, " components in colour space ", cs,
                " (libjpeg's numbering) is not supported: only grayscale, RGB/YCbCr, CMYK and YCCK are read");
    }
    SANF_FAIL(name, ": corrupt JPEG: ", d.errors.message);
  }
  if (d.channels == 4) {  // CMYK or YCCK, decoded to CMYK
    cmyk_to_rgb(d.pixels, size_t(d.width) * d.height);
    d.channels = 3;
  }
  Tensor t = planar(d.pixels, d.height, d.width, d.channels);
  std::free(d.pixels);
  return t;
}

}  // namespace

Tensor decode_image(const void* data, size_t size, const std::string& name) {
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  const auto* p = static_cast<const unsigned char*>(data);
  if (size >= 8 && std::memcmp(p, kPng, 8) == 0) return decode_png_bytes(p, size, name);
  if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return decode_jpeg_bytes(p, size, name);
  if (size == 0) SANF_FAIL(name, ": not a PNG or JPEG image (the file is empty)");
  const std::vector<unsigned char> head(p, p + std::min<size_t>(size, 8));
  SANF_FAIL(name, ": not a PNG or JPEG image (starts with bytes ", fmt::format("{:02x}", fmt::join(head, " ")), ")");
}

Tensor read_image(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  SANF_CHECK(f != nullptr, path, ": cannot open: ", std::strerror(errno));
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  SANF_CHECK(!failed, path, ": read failed: ", std::strerror(err));
  return decode_image(bytes.data(), bytes.size(), path);
}

std::string encode_png(const Tensor& u8_chw) {
  SANF_CHECK(u8_chw.defined() && u8_chw.dim() == 3 && u8_chw.dtype() == DType::U8,
             "[encode_png] needs a u8 image (C, H, W), got ", u8_chw.defined() ? u8_chw.info() : "undefined");
  const int64_t C = u8_chw.size(0), H = u8_chw.size(1), W = u8_chw.size(2);
  SANF_CHECK(C == 1 || C == 3 || C == 4, "[encode_png] needs 1, 3 or 4 channels, got ", u8_chw.info());
  SANF_CHECK(H > 0 && W > 0 && H <= 1000000 && W <= 1000000, "[encode_png] image size ", H, "x", W,
             " is outside 1..1000000");
  const std::vector<char> planes = u8_chw.to_bytes();  // contiguous (C, H, W) on the host
  std::vector<unsigned char> px(static_cast<size_t>(C * H * W));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < H * W; ++i)
      px[size_t(i * C + c)] = static_cast<unsigned char>(planes[size_t(c * H * W + i)]);
  std::vector<png_bytep> rows(static_cast<size_t>(H));
  for (int64_t y = 0; y < H; ++y) rows[size_t(y)] = px.data() + y * W * C;
  PngEncode e{};
  e.rows = rows.data();
  e.width = png_uint_32(W), e.height = png_uint_32(H);
  e.color_type = C == 1 ? PNG_COLOR_TYPE_GRAY : C == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
  const int ok = png_encode(&e);
  std::string out = ok ? std::string(reinterpret_cast<const char*>(e.out), e.size) : std::string();
  std::free(e.out);
  SANF_CHECK(ok, "[encode_png] libpng failed: ", e.message);
  return out;
}

void write_png(const std::string& path, const Tensor& u8_chw) { write_file_atomic(path, encode_png(u8_chw)); }

}  // namespace sanf::apps
