# Optional GMP accelerator for cipherml (see scripts/build-native.mjs, src/core/bigmath/gmp.ts).
# Plain C against node_api.h only, Node-API version 8: one build loads in every Node >= 16.x
# regardless of the headers it was compiled against. Needs libgmp (Debian: libgmp-dev).
{
  "targets": [
    {
      "target_name": "cipherml_gmp",
      "sources": ["src/cipherml_gmp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O2", "-O1", "-O0"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lgmp"],
      "conditions": [
        ["OS=='mac'", {
          "include_dirs": ["/opt/homebrew/include", "/usr/local/include"],
          "libraries": ["-L/opt/homebrew/lib", "-L/usr/local/lib"],
          "xcode_settings": {
            "GCC_OPTIMIZATION_LEVEL": "3",
            "OTHER_CFLAGS": ["-std=gnu11"]
          }
        }]
      ]
    }
  ]
}
