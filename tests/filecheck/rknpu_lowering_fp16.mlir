// RUN: rkc-opt %s -p nn-to-rknpu | filecheck %s
// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588}' | filecheck %s --check-prefix=RK3588
// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3568},nn-to-rknpu,rknpu-layout{target=rk3568}' | filecheck %s --check-prefix=RK3568

func.func @main(%x: tensor<1x4x4x4xf16>) -> (tensor<1x6x1x1xf16>, tensor<1x6x4x4xf16>) {
  %w = nn.constant dense<0.5> : tensor<6x4x1x1xf16>
  %b = nn.constant dense<0.25> : tensor<6xf16>
  %c = nn.conv2d %x, %w, %b {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x4x4xf16>, tensor<6x4x1x1xf16>, tensor<6xf16>) -> tensor<1x6x4x4xf16>
  %l = nn.leaky_relu %c {rkc.name = "leaky", alpha = 0.1 : f32} : (tensor<1x6x4x4xf16>) -> tensor<1x6x4x4xf16>
  %s = nn.constant dense<[[[0.1]], [[0.2]], [[0.3]], [[0.4]], [[0.5]], [[0.6]]]> : tensor<6x1x1xf16>
  %p = nn.prelu %l, %s {rkc.name = "prelu"} : (tensor<1x6x4x4xf16>, tensor<6x1x1xf16>) -> tensor<1x6x4x4xf16>
  %a = nn.abs %p {rkc.name = "abs"} : (tensor<1x6x4x4xf16>) -> tensor<1x6x4x4xf16>
  %n = nn.neg %a {rkc.name = "neg"} : (tensor<1x6x4x4xf16>) -> tensor<1x6x4x4xf16>
  %m = nn.max_pool2d %n {rkc.name = "pool", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x6x4x4xf16>) -> tensor<1x6x2x2xf16>
  %g = nn.global_avg_pool %m {rkc.name = "gap"} : (tensor<1x6x2x2xf16>) -> tensor<1x6x1x1xf16>
  %sg = nn.sigmoid %c {rkc.name = "sigmoid"} : (tensor<1x6x4x4xf16>) -> tensor<1x6x4x4xf16>
  func.return %g, %sg : tensor<1x6x1x1xf16>, tensor<1x6x4x4xf16>
}

// fp16 ops become the same tasks as int8 ones; leaky_relu / prelu / abs / neg are ew
// kinds of their own (int8 computes them through a lut). The prelu slope [C, 1, 1] is
// re-materialized as [1, C, 1, 1]; the global average pool keeps the reference's float64
// mean (fp16_sum).
// CHECK:      %c = rknpu.conv %x, %w, %b {rkc.name = "conv", {{.*}}} : (tensor<1x4x4x4xf16>, tensor<6x4x1x1xf16>, tensor<6xf16>) -> tensor<1x6x4x4xf16>
// CHECK-NEXT: %l = rknpu.ew %c {rkc.name = "leaky", kind = "leaky_relu", params = array<f32: 1.000000e-01>}
// CHECK-NEXT: %[[S:.*]] = nn.constant dense<{{.*}}> : tensor<1x6x1x1xf16>
// CHECK-NEXT: %p = rknpu.ew %l, %[[S]] {rkc.name = "prelu", kind = "prelu"}
// CHECK-NEXT: %a = rknpu.ew %p {rkc.name = "abs", kind = "abs"}
// CHECK-NEXT: %n = rknpu.ew %a {rkc.name = "neg", kind = "neg"}
// CHECK-NEXT: %m = rknpu.pool %n {rkc.name = "pool", kind = "max", {{.*}}} : (tensor<1x6x4x4xf16>) -> tensor<1x6x2x2xf16>
// CHECK-NEXT: %g = rknpu.pool %m {rkc.name = "gap", kind = "avg", kernel = array<i64: 2, 2>, {{.*}} fp16_sum = "float64_mean"}

// The chain runs in NC1HWC2 with C2 = 8 (RK3588) / 4 (RK3568) for fp16; the fp16
// sigmoid has no lut on the NPU and stays on the host.
// RK3588:      rknpu.to_native %x {c2 = 8 : i64} : (tensor<1x4x4x4xf16>) -> tensor<1x1x4x4x8xf16>
// RK3588-NEXT: %[[C:.*]] = rknpu.conv {{.*}} -> tensor<1x1x4x4x8xf16>
// RK3588-NEXT: %c = rknpu.from_native %[[C]] {channels = 6 : i64}
// RK3588-NEXT: %[[L:.*]] = rknpu.ew %[[C]] {rkc.name = "leaky"
// The slope constant is packed at compile time, its padding channels 0.
// RK3588:      %[[S:.*]] = nn.constant dense<{{\[\[\[\[\[}}9.997560e-02, {{.*}}, 6.000980e-01, 0.000000e+00, 0.000000e+00]]]]]> : tensor<1x1x1x1x8xf16>
// RK3588-NEXT: rknpu.ew %[[L]], %[[S]] {rkc.name = "prelu", kind = "prelu"} : (tensor<1x1x4x4x8xf16>, tensor<1x1x1x1x8xf16>) -> tensor<1x1x4x4x8xf16>
// RK3588:      rknpu.pool {{.*}} {rkc.name = "gap"{{.*}} -> tensor<1x1x1x1x8xf16>
// RK3588:      "rknpu.cpu"(%c) <{reason = "data type fp16: the DPU lookup table is built for int8 only"}>
// RK3568:      rknpu.conv {{.*}} -> tensor<1x2x4x4x4xf16>
// RK3568:      rknpu.pool {{.*}} {rkc.name = "gap"{{.*}} -> tensor<1x2x1x1x4xf16>
