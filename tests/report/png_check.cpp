// report_png_check FILE: exit 0 when the PNG screenshot is not blank (more than 1% of its pixels
// differ from the background colour of the top-left pixel and at least 3 distinct colours appear),
// 1 when it is blank, 2 when it cannot be read.
#include <png.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: report_png_check FILE.png\n");
    return 2;
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, argv[1])) {
    std::fprintf(stderr, "cannot read %s: %s\n", argv[1], image.message);
    return 2;
  }
  image.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
    std::fprintf(stderr, "cannot decode %s: %s\n", argv[1], image.message);
    return 2;
  }
  const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
  const unsigned char* bg = pixels.data();
  std::size_t different = 0;
  std::set<unsigned> colours;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* p = pixels.data() + 3 * i;
    if (std::abs(p[0] - bg[0]) + std::abs(p[1] - bg[1]) + std::abs(p[2] - bg[2]) > 30) ++different;
    if (colours.size() < 1000) colours.insert((unsigned{p[0]} << 16) | (unsigned{p[1]} << 8) | p[2]);
  }
  const double fraction = static_cast<double>(different) / static_cast<double>(n);
  std::printf("%s: %ux%u, %.2f%% non-background pixels, %zu+ colours\n", argv[1], image.width, image.height,
              100.0 * fraction, colours.size());
  return fraction > 0.01 && colours.size() >= 3 ? 0 : 1;
}
