// RUN: rkc-opt %s -p nn-to-rknpu | filecheck %s
// RUN: rkc-opt %s -p 'nn-to-rknpu,rknpu-layout{target=rk3588}' | filecheck %s --check-prefix=RK3588
// RUN: rkc-opt %s -p 'nn-to-rknpu,rknpu-layout{target=rk3568}' | filecheck %s --check-prefix=RK3568

func.func @main(%x: tensor<1x3x4x4x!quant.uniform<i8:f32, 0.05:-3>>, %y: tensor<1x3x4x4x!quant.uniform<i8:f32, 0.04:2>>) -> tensor<1x3x2x2xf32> {
  %w = nn.constant dense<[[[[1]], [[-2]], [[3]]], [[[4]], [[5]], [[-6]]], [[[7]], [[8]], [[9]]]]> : tensor<3x3x1x1xi8> as tensor<3x3x1x1x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0}>>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu"} : (tensor<1x3x4x4x!quant.uniform<i8:f32, 0.05:-3>>, tensor<3x3x1x1x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0}>>) -> tensor<1x3x4x4x!quant.uniform<i8:f32, 0.02:-128>>
  %s = nn.add %c, %y {rkc.name = "add"} : (tensor<1x3x4x4x!quant.uniform<i8:f32, 0.02:-128>>, tensor<1x3x4x4x!quant.uniform<i8:f32, 0.04:2>>) -> tensor<1x3x4x4x!quant.uniform<i8:f32, 0.06:-10>>
  %p = nn.max_pool2d %s {rkc.name = "pool", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x3x4x4x!quant.uniform<i8:f32, 0.06:-10>>) -> tensor<1x3x2x2x!quant.uniform<i8:f32, 0.06:-10>>
  %f = quant.dequantize %p {rkc.name = "out"} : tensor<1x3x2x2x!quant.uniform<i8:f32, 0.06:-10>> -> tensor<1x3x2x2xf32>
  func.return %f : tensor<1x3x2x2xf32>
}

// The conv, the add and the pool become tasks; the dequantize at the edge stays on the host.
// CHECK:      %c = rknpu.conv %x, %w {rkc.name = "conv", {{.*}} activation = "relu"}
// CHECK-NEXT: %s = rknpu.ew %c, %y {rkc.name = "add", kind = "add"}
// CHECK-NEXT: %p = rknpu.pool %s {rkc.name = "pool", kind = "max", kernel = array<i64: 2, 2>
// CHECK-NEXT: %f = "rknpu.cpu"(%p) <{reason = "float <-> int8 conversion at the graph edge runs on the host"}>
// CHECK:        quant.dequantize
// CHECK-NEXT:   rknpu.yield
// CHECK-NOT:  nn.conv2d

// Native layout: each graph input converted once, one conversion back before the host op.
// RK3588:      %0 = rknpu.to_native %x {c2 = 16 : i64} : {{.*}} -> tensor<1x1x4x4x16x
// RK3588-NEXT: %1 = rknpu.conv %0, %w {{.*}} -> tensor<1x1x4x4x16x!quant.uniform<i8:f32, 0.02:-128>>
// RK3588-NEXT: %2 = rknpu.to_native %y {c2 = 16 : i64}
// RK3588-NEXT: %3 = rknpu.ew %1, %2 {{.*}} -> tensor<1x1x4x4x16x!quant.uniform<i8:f32, 0.06:-10>>
// RK3588-NEXT: %4 = rknpu.pool %3 {{.*}} -> tensor<1x1x2x2x16x!quant.uniform<i8:f32, 0.06:-10>>
// RK3588-NEXT: %p = rknpu.from_native %4 {channels = 3 : i64} : {{.*}} -> tensor<1x3x2x2x!quant
// RK3588-NOT:  rknpu.to_native
// RK3568:      rknpu.to_native %x {c2 = 8 : i64} : {{.*}} -> tensor<1x1x4x4x8x
// RK3568:      rknpu.from_native {{.*}} {channels = 3 : i64} : (tensor<1x1x2x2x8x
