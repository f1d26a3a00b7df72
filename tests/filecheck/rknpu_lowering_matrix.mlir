// RUN: rkc-opt %s --split-input-file -p nn-to-rknpu | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'nn-to-rknpu,rknpu-layout{target=rk3588}' | filecheck %s --check-prefix=RK3588
// RUN: rkc-opt %s --split-input-file -p 'nn-to-rknpu,rknpu-layout{target=rk3568}' | filecheck %s --check-prefix=RK3568

// gemm / matmul with a constant weight: A [M, K] viewed as [M, K, 1, 1], a 1x1 conv with
// weight op(B)^T as [N, K, 1, 1] (per-axis scales on axis 0) and C as a bias [N], the
// result [M, N, 1, 1] viewed as [M, N].
// CHECK-LABEL: func.func @gemm
// CHECK:      %[[W:.*]] = nn.constant dense<3> : tensor<4x16x1x1xi8> as tensor<4x16x1x1x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0, 0.04:0}>>
// CHECK-NEXT: %[[B:.*]] = nn.constant dense<[10, -20, 30, -40]> : tensor<4xi32> as tensor<4x!quant.uniform<i32:f32:0, {0.0005:0, 0.001:0, 0.0015:0, 0.002:0}>>
// CHECK-NEXT: %[[A:.*]] = rknpu.view %a {offset = 0 : i64, shape = array<i64: 2, 16, 1, 1>}
// CHECK-NEXT: %[[C:.*]] = rknpu.conv %[[A]], %[[W]], %[[B]] {rkc.name = "fc", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>}
// CHECK-SAME: -> tensor<2x4x1x1x!quant.uniform<i8:f32, 0.1:5>>
// CHECK-NEXT: %g = rknpu.view %[[C]] {offset = 0 : i64, shape = array<i64: 2, 4>}
// CHECK-NOT:  nn.gemm
// In NC1HWC2 [M, K] and [M, K, 1, 1] are the same bytes: the output view disappears and
// the result converts back to [M, N] directly.
// RK3588-LABEL: func.func @gemm
// RK3588:      rknpu.to_native {{.*}} {c2 = 16 : i64} {{.*}} -> tensor<2x1x1x1x16x
// RK3588-NEXT: %[[C:.*]] = rknpu.conv {{.*}} -> tensor<2x1x1x1x16x!quant.uniform<i8:f32, 0.1:5>>
// RK3588-NEXT: %g = rknpu.from_native %[[C]] {channels = 4 : i64, rank = 2 : i64} {{.*}} -> tensor<2x4x!quant.uniform<i8:f32, 0.1:5>>
// RK3568-LABEL: func.func @gemm
// RK3568:      rknpu.conv {{.*}} : (tensor<2x2x1x1x8x{{.*}} -> tensor<2x1x1x1x8x!quant.uniform<i8:f32, 0.1:5>>
func.func @gemm(%a: tensor<2x16x!quant.uniform<i8:f32, 0.05:-3>>) -> tensor<2x4x!quant.uniform<i8:f32, 0.1:5>> {
  %b = nn.constant dense<3> : tensor<4x16xi8> as tensor<4x16x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0, 0.04:0}>>
  %c = nn.constant dense<[[10, -20, 30, -40]]> : tensor<1x4xi32> as tensor<1x4x!quant.uniform<i32:f32:1, {5.0e-04:0, 1.0e-03:0, 1.5e-03:0, 2.0e-03:0}>>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc", alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = true, activation = "relu", activation_params = array<f32>} : (tensor<2x16x!quant.uniform<i8:f32, 0.05:-3>>, tensor<4x16x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0, 0.04:0}>>, tensor<1x4x!quant.uniform<i32:f32:1, {5.0e-04:0, 1.0e-03:0, 1.5e-03:0, 2.0e-03:0}>>) -> tensor<2x4x!quant.uniform<i8:f32, 0.1:5>>
  func.return %g : tensor<2x4x!quant.uniform<i8:f32, 0.1:5>>
}

// -----

// matmul B [K, N] per-axis on N: the weight is B^T. A reshape [1, 2, 1, 1] -> [1, 2]
// before it and the matmul's own view back to [1, 2, 1, 1] cancel out.
// CHECK-LABEL: func.func @matmul
// CHECK:      %[[W:.*]] = nn.constant dense<{{\[\[\[\[}}1]], {{\[\[}}4]]], {{\[\[\[}}2]], {{\[\[}}5]]], {{\[\[\[}}3]], {{\[\[}}6]]]]> : tensor<3x2x1x1xi8> as tensor<3x2x1x1x!quant.uniform<i8:f32:0, {0.01:0, 0.02:0, 0.03:0}>>
// CHECK-NEXT: %[[C:.*]] = rknpu.conv %x, %[[W]] {rkc.name = "head", {{.*}}} : (tensor<1x2x1x1x!quant.uniform<i8:f32, 0.05:0>>, tensor<3x2x1x1x{{.*}}) -> tensor<1x3x1x1x!quant.uniform<i8:f32, 0.2:1>>
// CHECK-NEXT: %y = rknpu.view %[[C]] {offset = 0 : i64, shape = array<i64: 1, 3>}
// CHECK-NOT:  rknpu.view
// RK3588-LABEL: func.func @matmul
// RK3588:      rknpu.to_native %x {c2 = 16 : i64}
// RK3588-NEXT: rknpu.conv
// RK3588-NEXT: %y = rknpu.from_native {{.*}} {channels = 3 : i64, rank = 2 : i64}
// RK3588-NOT:  rknpu.view
func.func @matmul(%x: tensor<1x2x1x1x!quant.uniform<i8:f32, 0.05:0>>) -> tensor<1x3x!quant.uniform<i8:f32, 0.2:1>> {
  %f = nn.reshape %x {rkc.name = "flatten", shape = array<i64: 1, 2>} : (tensor<1x2x1x1x!quant.uniform<i8:f32, 0.05:0>>) -> tensor<1x2x!quant.uniform<i8:f32, 0.05:0>>
  %b = nn.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8> as tensor<2x3x!quant.uniform<i8:f32:1, {0.01:0, 0.02:0, 0.03:0}>>
  %y = nn.matmul %f, %b {rkc.name = "head"} : (tensor<1x2x!quant.uniform<i8:f32, 0.05:0>>, tensor<2x3x!quant.uniform<i8:f32:1, {0.01:0, 0.02:0, 0.03:0}>>) -> tensor<1x3x!quant.uniform<i8:f32, 0.2:1>>
  func.return %y : tensor<1x3x!quant.uniform<i8:f32, 0.2:1>>
}

// -----

// fp16: the conv sums as the gemm reference does (fp16_sum = "sequential"); alpha != 1
// scales the product before C * beta is added, so both become rknpu.ew after the conv,
// then the activation.
// CHECK-LABEL: func.func @gemm_fp16
// CHECK:      %[[C:.*]] = rknpu.conv %{{.*}}, %{{.*}} {rkc.name = "fc16", {{.*}}fp16_sum = "sequential"} : (tensor<1x2x1x1xf16>, tensor<2x2x1x1xf16>) -> tensor<1x2x1x1xf16>
// CHECK-NEXT: %[[A:.*]] = nn.constant dense<5.000000e-01> : tensor<1x2x1x1xf16>
// CHECK-NEXT: %[[M:.*]] = rknpu.ew %[[C]], %[[A]] {kind = "mul"}
// CHECK-NEXT: %[[CB:.*]] = nn.constant dense<[{{\[\[}}[5.000000e-01]], {{\[\[}}1.000000e+00]]]]> : tensor<1x2x1x1xf16>
// CHECK-NEXT: %[[S:.*]] = rknpu.ew %[[M]], %[[CB]] {kind = "add"}
// CHECK-NEXT: %[[R:.*]] = rknpu.ew %[[S]] {kind = "relu"}
// CHECK-NEXT: rknpu.view %[[R]] {offset = 0 : i64, shape = array<i64: 1, 2>}
// RK3588-LABEL: func.func @gemm_fp16
// RK3588:      rknpu.conv {{.*}} -> tensor<1x1x1x1x8xf16>
// RK3568-LABEL: func.func @gemm_fp16
// RK3568:      rknpu.conv {{.*}} -> tensor<1x1x1x1x4xf16>
func.func @gemm_fp16(%a: tensor<1x2xf16>) -> tensor<1x2xf16> {
  %b = nn.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf16>
  %c = nn.constant dense<[1.0, 2.0]> : tensor<2xf16>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc16", alpha = 0.5 : f32, beta = 0.5 : f32, trans_a = false, trans_b = false, activation = "relu", activation_params = array<f32>} : (tensor<1x2xf16>, tensor<2x2xf16>, tensor<2xf16>) -> tensor<1x2xf16>
  func.return %g : tensor<1x2xf16>
}
