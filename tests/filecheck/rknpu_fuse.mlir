// RUN: rkc-opt %s --split-input-file -p 'rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588},rknpu-fuse' | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'nn-to-rknpu,rknpu-fuse,rknpu-layout{target=rk3568}' | filecheck %s --check-prefix=RK3568

!x = !quant.uniform<i8:f32, 0.05:0>
!y = !quant.uniform<i8:f32, 0.02:-10>
!z = !quant.uniform<i8:f32, 0.04:3>
!w = !quant.uniform<i8:f32, 0.01:0>

// A residual block: conv, add of a second tensor (EW, per pixel), clip (the output
// converter's saturation): one task whose second tensor is a post operand. Each stage
// records the element type it reads.
// CHECK-LABEL: func.func @residual
// CHECK:      %[[C:.*]] = rknpu.conv %{{.*}}, %w post(%{{.*}}) {rkc.name = "conv", {{.*}}post_ops = [{kind = "add", input = !quant.uniform<i8:f32, 0.02:-10>, operand = 0 : i64}, {kind = "clip", input = !quant.uniform<i8:f32, 0.04:3>, params = array<f32: 0.000000e+00, 6.000000e+00>}]}
// CHECK-SAME: -> tensor<1x1x2x2x16x!quant.uniform<i8:f32, 0.04:3>>
// CHECK-NEXT: %o = rknpu.from_native %[[C]] {channels = 4 : i64}
// CHECK-NOT:  rknpu.ew
// RK3568-LABEL: func.func @residual
// RK3568:      rknpu.conv {{.*}} post({{.*}}) {{.*}} post_ops = [{kind = "add", {{.*}}}, {kind = "clip", {{.*}}}]} : (tensor<1x1x2x2x8x{{.*}}, tensor<4x4x1x1x{{.*}}, tensor<1x1x2x2x8x{{.*}}) -> tensor<1x1x2x2x8x
func.func @residual(%x: tensor<1x4x2x2x!x>, %r: tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z> {
  %w = nn.constant dense<1> : tensor<4x4x1x1xi8> as tensor<4x4x1x1x!w>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x2x2x!x>, tensor<4x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %s = nn.add %c, %r {rkc.name = "add"} : (tensor<1x4x2x2x!y>, tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z>
  %o = nn.clip %s {rkc.name = "relu6", min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x4x2x2x!z>) -> tensor<1x4x2x2x!z>
  func.return %o : tensor<1x4x2x2x!z>
}

// -----

!x = !quant.uniform<i8:f32, 0.05:0>
!y = !quant.uniform<i8:f32, 0.02:-10>
!z = !quant.uniform<i8:f32, 0.04:3>
!w = !quant.uniform<i8:f32, 0.01:0>

// A sub with the conv's result on the right (r - conv) has no one-pass DPU form (the EW
// stage computes conv - operand), so nothing after the conv is fused: the sub, the
// lut and the add stay elementwise tasks.
// CHECK-LABEL: func.func @stage_order
// CHECK:      %[[C:.*]] = rknpu.conv %{{.*}}, %w {rkc.name = "conv", {{.*}}group = 1 : i64} :
// CHECK-NEXT: %[[R:.*]] = rknpu.to_native %r
// CHECK-NEXT: %[[S:.*]] = rknpu.ew %[[R]], %[[C]] {rkc.name = "sub", kind = "sub"}
// CHECK-NEXT: %[[L:.*]] = rknpu.ew %[[S]] {rkc.name = "sigmoid", kind = "lut"
// CHECK-NEXT: rknpu.ew %[[L]], %[[R]] {rkc.name = "add", kind = "add"}
func.func @stage_order(%x: tensor<1x4x2x2x!x>, %r: tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z> {
  %w = nn.constant dense<1> : tensor<4x4x1x1xi8> as tensor<4x4x1x1x!w>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x2x2x!x>, tensor<4x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %d = nn.sub %r, %c {rkc.name = "sub"} : (tensor<1x4x2x2x!y>, tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z>
  %s = nn.sigmoid %d {rkc.name = "sigmoid"} : (tensor<1x4x2x2x!z>) -> tensor<1x4x2x2x!z>
  %a = nn.add %s, %r {rkc.name = "add"} : (tensor<1x4x2x2x!z>, tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z>
  func.return %a : tensor<1x4x2x2x!z>
}

// -----

!x = !quant.uniform<i8:f32, 0.05:0>
!y = !quant.uniform<i8:f32, 0.02:-10>
!z = !quant.uniform<i8:f32, 0.04:3>
!w = !quant.uniform<i8:f32, 0.01:0>

// A requantize fuses into the conv; a mul by a per-channel constant after it would need
// a second rescale after the DPU's one output converter, so it and the relu after it stay
// tasks (only chains the DPU computes exactly in one pass fuse). Only EW reads a second
// tensor, so of two adds of tensors the second stays a task of its own.
// CHECK-LABEL: func.func @channel_stages
// CHECK:      %[[Q:.*]] = rknpu.conv {{.*}} post_ops = [{kind = "requantize", {{.*}}}]}
// CHECK:      %[[M:.*]] = rknpu.ew %[[Q]], %{{.*}} {rkc.name = "scale", kind = "mul"}
// CHECK-NEXT: rknpu.ew %[[M]] {rkc.name = "relu", kind = "relu"}
// CHECK:      %[[C:.*]] = rknpu.conv {{.*}} post_ops = [{kind = "add", {{.*}}operand = 0 : i64}]}
// CHECK-NEXT: rknpu.ew %[[C]], %{{.*}} {rkc.name = "add2", kind = "add"}
func.func @channel_stages(%x: tensor<1x4x2x2x!x>, %r: tensor<1x4x2x2x!y>) -> (tensor<1x4x2x2x!y>, tensor<1x4x2x2x!z>) {
  %w = nn.constant dense<1> : tensor<4x4x1x1xi8> as tensor<4x4x1x1x!w>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x2x2x!x>, tensor<4x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %q = quant.requantize %c : tensor<1x4x2x2x!y> -> tensor<1x4x2x2x!z>
  %k = nn.constant dense<[[[[1]], [[2]], [[3]], [[4]]]]> : tensor<1x4x1x1xi8> as tensor<1x4x1x1x!w>
  %m = nn.mul %q, %k {rkc.name = "scale"} : (tensor<1x4x2x2x!z>, tensor<1x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %u = nn.relu %m {rkc.name = "relu"} : (tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!y>
  %c2 = nn.conv2d %x, %w {rkc.name = "conv2", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x2x2x!x>, tensor<4x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %a1 = nn.add %c2, %r {rkc.name = "add1"} : (tensor<1x4x2x2x!y>, tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z>
  %a2 = nn.add %a1, %r {rkc.name = "add2"} : (tensor<1x4x2x2x!z>, tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!z>
  func.return %u, %a2 : tensor<1x4x2x2x!y>, tensor<1x4x2x2x!z>
}

// -----

!x = !quant.uniform<i8:f32, 0.05:0>
!y = !quant.uniform<i8:f32, 0.02:-10>
!w = !quant.uniform<i8:f32, 0.01:0>

// A conv whose result is also read elsewhere keeps it: nothing fuses.
// CHECK-LABEL: func.func @two_uses
// CHECK-NOT:  post_ops
// CHECK:      rknpu.ew {{.*}} {rkc.name = "relu", kind = "relu"}
func.func @two_uses(%x: tensor<1x4x2x2x!x>) -> (tensor<1x4x2x2x!y>, tensor<1x4x2x2x!y>) {
  %w = nn.constant dense<1> : tensor<4x4x1x1xi8> as tensor<4x4x1x1x!w>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x2x2x!x>, tensor<4x4x1x1x!w>) -> tensor<1x4x2x2x!y>
  %u = nn.relu %c {rkc.name = "relu"} : (tensor<1x4x2x2x!y>) -> tensor<1x4x2x2x!y>
  func.return %c, %u : tensor<1x4x2x2x!y>, tensor<1x4x2x2x!y>
}
