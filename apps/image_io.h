// apps/image_io.h: PNG and JPEG files to u8 (C, H, W) tensors and back, through libpng and libjpeg-turbo.
//
// read_image picks the decoder by the file's first bytes (PNG signature 89 'PNG' 0D 0A 1A 0A, JPEG FF D8 FF),
// never by its extension. It returns u8 (C, H, W) on the CPU with C = 1 (gray) or 3 (RGB):
//   PNG   any bit depth and colour type: 1/2/4-bit gray widened to 8, palette expanded to RGB, 16-bit scaled to
//         8 (round(v * 255 / 65535)), interlaced (Adam7) images de-interlaced. An ALPHA CHANNEL (gray+alpha,
//         RGBA, or a palette/tRNS transparency) IS DROPPED, not composited: the colour values are returned as
//         stored. No gamma or colour-profile conversion is applied.
//   JPEG  grayscale -> C = 1; YCbCr or RGB -> C = 3 (libjpeg's default IDCT and upsampling). CMYK and YCCK
//         (4-component) JPEGs -> C = 3 RGB, exactly as Pillow 9.4 (Debian 12's python3-pil) makes them with
//         Image.open(f).convert("RGB"): libjpeg decodes YCCK to CMYK, the samples are read with Adobe's
//         inverted polarity whatever the APP14 marker says (Pillow's "CMYK;I"; Photoshop writes CMYK that way),
//         and R = k - MULDIV255(255 - c, k) (Pillow's cmyk2rgb; G from m, B from y; MULDIV255(a, b) =
//         (t + (t >> 8)) >> 8, t = a b + 128). No ICC profile is applied (Pillow's convert applies none). Pinned by
//         tests/fixtures/cmyk/ (made by Pillow; tests/fixtures/make_cmyk_fixtures.py). Other colour spaces (a
//         2-component JPEG, say) are rejected with an error.
// Images over 2^28 pixels (16384 x 16384) are rejected before anything is allocated.
//
// Errors are sanf::Error naming the file and saying what is wrong: "not a PNG or JPEG image", "truncated PNG",
// "truncated JPEG", "corrupt PNG: <libpng's reason>", "corrupt JPEG: <libjpeg's reason>". A PNG is read to its
// IEND chunk (so a file cut short anywhere is truncated) and every chunk CRC is checked. JPEG warnings that
// mean the pixels are wrong (premature end of file, bad Huffman or arithmetic code, premature end of a data
// segment, lost sync, bad progression) are errors; harmless ones (extraneous bytes before a marker, unknown
// JFIF revision, unknown Adobe transform, bad ICC marker) are ignored.
//
// The decoders' error callbacks never throw through C frames: each library is driven from a C-style function
// that owns its setjmp point and holds no C++ objects, and the error becomes a sanf::Error after it returns.
#pragma once

#include <string>

#include "core/tensor.h"

namespace sanf::apps {

// Decode a PNG or JPEG file (see above).
Tensor read_image(const std::string& path);
// The same from bytes in memory; `name` is used in error messages.
Tensor decode_image(const void* data, size_t size, const std::string& name);

// u8 (C, H, W) with C = 1 (gray), 3 (RGB) or 4 (RGBA), on any device, to an 8-bit non-interlaced PNG.
// encode_png returns the file's bytes (e.g. for report thumbnails); write_png writes a temporary file in the
// same directory and renames it over `path` (core/atomic_file.h), so a reader never sees a half-written image.
std::string encode_png(const Tensor& u8_chw);
void write_png(const std::string& path, const Tensor& u8_chw);

}  // namespace sanf::apps
