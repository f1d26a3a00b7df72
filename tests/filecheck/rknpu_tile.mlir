// RUN: rkc-opt %s -p 'rknpu-tile{target=rk3588}' | filecheck %s
// RUN: rkc-opt %s -p 'rknpu-tile{target=rk3588 cores=3}' | filecheck %s --check-prefix=CORES
// RUN: rkc-opt %s -p 'rknpu-tile{target=rk3588 cbuf-banks=3}' | filecheck %s --check-prefix=SMALL
// RUN: not rkc-opt %s -p 'rknpu-tile{target=rk3568 cores=2}' 2>&1 | filecheck %s --check-prefix=CORES-ERR
// RUN: not rkc-opt %s -p 'rknpu-tile{target=rk3588 cbuf-bank-bytes=4096}' 2>&1 | filecheck %s --check-prefix=FIT-ERR

!x = tensor<1x1x224x224x16x!quant.uniform<i8:f32, 0.05:0>>
!w = tensor<16x3x7x7x!quant.uniform<i8:f32, 0.01:0>>
!y = tensor<1x1x112x112x16x!quant.uniform<i8:f32, 0.04:-128>>
!s = tensor<1x1x32x32x16x!quant.uniform<i8:f32, 0.05:0>>
!ws = tensor<16x16x3x3x!quant.uniform<i8:f32, 0.01:0>>
!d = tensor<1x8x7x7x16x!quant.uniform<i8:f32, 0.05:0>>
!e = tensor<1x4x7x7x16x!quant.uniform<i8:f32, 0.05:0>>
!wd = tensor<64x128x3x3x!quant.uniform<i8:f32, 0.01:0>>
func.func @main(%x: !x, %s: !s, %d: !d) -> (!y, !s, !e) {
  %w = nn.constant dense<1> : tensor<16x3x7x7xi8> as !w
  %stem = rknpu.conv %x, %w {rkc.name = "stem", strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>, dilations = array<i64: 1, 1>, group = 1 : i64} : (!x, !w) -> !y
  %ws = nn.constant dense<1> : tensor<16x16x3x3xi8> as !ws
  %small = rknpu.conv %s, %ws {rkc.name = "small", strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (!s, !ws) -> !s
  %wd = nn.constant dense<1> : tensor<64x128x3x3xi8> as !wd
  %deep = rknpu.conv %d, %wd {rkc.name = "deep", strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (!d, !wd) -> !e
  func.return %stem, %small, %deep : !y, !s, !e
}


// The stem (224 input rows x 3584 B, 25 banks) is cut into height bands whose input
// rows overlap by the kernel's halo (7 - 2 = 5 rows); the other two are one task each
// (no rknpu.tiles).
// CHECK:      rknpu.conv %x, %w {rkc.name = "stem", rknpu.cbuf = array<i64: 11, 1>, rknpu.tile_method = "BY_Y", rknpu.tiles = [array<i64: 0, 49, 0, 16, 0>, array<i64: 49, 96, 0, 16, 0>, array<i64: 96, 112, 0, 16, 0>], strides
// CHECK:      rknpu.conv %s, %ws {rkc.name = "small", rknpu.cbuf = array<i64: 1, 11>, rknpu.tile_method = "NONE", strides
// CHECK:      rknpu.conv %d, %wd {rkc.name = "deep", rknpu.cbuf = array<i64: 1, 11>, rknpu.tile_method = "NONE", strides

// Three cores: every conv is cut into three bands, tiles round-robin over the cores.
// CORES:      rkc.name = "stem", rknpu.cbuf = array<i64: 11, 1>, rknpu.tile_method = "BY_Y", rknpu.tiles = [array<i64: 0, 49, 0, 16, 0>, array<i64: 49, 96, 0, 16, 1>, array<i64: 96, 112, 0, 16, 2>]
// CORES:      rkc.name = "small", rknpu.cbuf = array<i64: 1, 11>, rknpu.tile_method = "BY_Y", rknpu.tiles = [array<i64: 0, 10, 0, 16, 0>, array<i64: 10, 21, 0, 16, 1>, array<i64: 21, 32, 0, 16, 2>]
// CORES:      rkc.name = "deep", rknpu.cbuf = array<i64: 1, 11>, rknpu.tile_method = "BY_Y", rknpu.tiles = [array<i64: 0, 2, 0, 64, 0>, array<i64: 2, 4, 0, 64, 1>, array<i64: 4, 7, 0, 64, 2>]

// A research CBUF of 3 banks (cbuf-banks): shorter stem bands, and the deep conv's 72 KiB
// of weights (3 banks) in two groups of 32 kernels (36 KiB, 2 banks each).
// SMALL:      rkc.name = "stem", rknpu.cbuf = array<i64: 2, 1>, rknpu.tile_method = "BY_Y", rknpu.tiles = [array<i64: 0, 8, 0, 16, 0>, array<i64: 8, 14, 0, 16, 0>,
// SMALL:      rkc.name = "small", rknpu.cbuf = array<i64: 1, 2>, rknpu.tile_method = "NONE"
// SMALL:      rkc.name = "deep", rknpu.cbuf = array<i64: 1, 2>, rknpu.tile_method = "BY_K", rknpu.tiles = [array<i64: 0, 7, 0, 32, 0>, array<i64: 0, 7, 32, 64, 0>]

// CORES-ERR: rkc-opt: error: rknpu-tile: RK3568 has 1 NPU core(s), cannot spread tasks over cores=2
// 12 banks of 4 KiB: one output row of the stem reads 7 rows (7 banks), 16 kernels need 7.
// FIT-ERR:   rkc-opt: error: rknpu-tile: conv 'stem': conv 3x224x224 -> 16 (7x7, int8) does not fit the RK3588 CBUF (12 banks of 4096 B): one output row reads 7 input rows x 3584 B = 7 data banks, and the smallest group of 16 kernels needs 7 weight banks
