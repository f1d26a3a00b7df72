// RUN: rkc-opt %s --split-input-file -p nn-gemm-to-conv | filecheck %s

// Y = alpha * A @ B + beta * C -> reshape, 1x1 conv (W = alpha * B^T, bias = beta * C),
// reshape; the activation and the name move to the conv.
// CHECK-LABEL: func.func @gemm
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<{{.*}}> : tensor<2x3x1x1xf32>
// CHECK-NEXT:    %[[A4:.*]] = nn.reshape %a {shape = array<i64: 4, 3, 1, 1>}
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[C:.*]] = nn.conv2d %[[A4]], %[[W]], %[[B]] {rkc.name = "fc", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>}
// CHECK-SAME:      -> tensor<4x2x1x1xf32>
// CHECK-NEXT:    %[[Y:.*]] = nn.reshape %[[C]] {shape = array<i64: 4, 2>}
// CHECK-NEXT:    func.return %[[Y]] : tensor<4x2xf32>
func.func @gemm(%a: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %b = nn.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
  %c = nn.constant dense<[[0.5, 1.0]]> : tensor<1x2xf32>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc", alpha = 2.0 : f32, beta = 2.0 : f32, trans_a = false, trans_b = false, activation = "relu", activation_params = array<f32>} : (tensor<4x3xf32>, tensor<3x2xf32>, tensor<1x2xf32>) -> tensor<4x2xf32>
  func.return %g : tensor<4x2xf32>
}

// -----

// The folded weight: W[m, k] = alpha * B[k, m], here B^T doubled.
// CHECK-LABEL: func.func @weight_values
// CHECK-NEXT:    nn.constant dense<[{{\[\[\[}}2.000000e+00]], {{\[\[}}6.000000e+00]]], {{\[\[\[}}4.000000e+00]], {{\[\[}}8.000000e+00]]]]> : tensor<2x2x1x1xf32>
func.func @weight_values(%a: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %b = nn.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %g = nn.gemm %a, %b {alpha = 2.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  func.return %g : tensor<1x2xf32>
}

// -----

// trans_a: A is transposed first; trans_b: B already is [M, K]; a scalar C broadcasts.
// CHECK-LABEL: func.func @transposed
// CHECK-NEXT:    %[[T:.*]] = nn.transpose %a {perm = array<i64: 1, 0>} : (tensor<3x4xf32>) -> tensor<4x3xf32>
// CHECK:         nn.reshape %[[T]] {shape = array<i64: 4, 3, 1, 1>}
// CHECK-NEXT:    nn.constant dense<5.000000e-01> : tensor<2xf32>
// CHECK-NEXT:    nn.conv2d
// CHECK-NOT:     nn.gemm
func.func @transposed(%a: tensor<3x4xf32>) -> tensor<4x2xf32> {
  %b = nn.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %c = nn.constant dense<0.5> : tensor<f32>
  %g = nn.gemm %a, %b, %c {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = true, trans_b = true} : (tensor<3x4xf32>, tensor<2x3xf32>, tensor<f32>) -> tensor<4x2xf32>
  func.return %g : tensor<4x2xf32>
}

// -----

// Left alone: C varies along the rows; B is not a constant.
// CHECK-LABEL: func.func @not_converted
// CHECK-COUNT-2: nn.gemm
// CHECK-NOT:     nn.conv2d
func.func @not_converted(%a: tensor<4x3xf32>, %bx: tensor<3x2xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
  %b = nn.constant dense<1.0> : tensor<3x2xf32>
  %c = nn.constant dense<[[1.0], [2.0], [3.0], [4.0]]> : tensor<4x1xf32>
  %g = nn.gemm %a, %b, %c {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<4x3xf32>, tensor<3x2xf32>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %h = nn.gemm %a, %bx {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
  func.return %g, %h : tensor<4x2xf32>, tensor<4x2xf32>
}
