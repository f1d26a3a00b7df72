// RUN: rkc-opt %s --split-input-file -p nn-fold-batchnorm | filecheck %s

// s = scale / sqrt(var + eps) = [1, 2]; W' = W * s; b' = (b - mean) * s + bias.
// The conv keeps its name; the batch norm and the old constants are gone.
// CHECK-LABEL: func.func @conv_bn
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<[{{\[\[\[}}1.000000e+00]]], {{\[\[\[}}2.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<[-5.000000e-01, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[C:.*]] = nn.conv2d %x, %[[W]], %[[B]] {rkc.name = "conv1"
// CHECK-NOT:     activation
// CHECK-NEXT:    func.return %[[C]]
func.func @conv_bn(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %b = nn.constant dense<[0.0, 1.0]> : tensor<2xf32>
  %scale = nn.constant dense<[2.0, 4.0]> : tensor<2xf32>
  %bias = nn.constant dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[4.0, 4.0]> : tensor<2xf32>
  %c = nn.conv2d %x, %w, %b {rkc.name = "conv1", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = nn.batch_norm %c, %scale, %bias, %mean, %var {epsilon = 0.0 : f32, rkc.name = "bn1"} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

// -----

// A conv without bias gets one: b' = -mean * s + bias.
// CHECK-LABEL: func.func @conv_without_bias_bn
// CHECK:         %[[B:.*]] = nn.constant dense<[-5.000000e-01, 0.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    nn.conv2d %x, %{{.*}}, %[[B]]
// CHECK-NOT:     nn.batch_norm
func.func @conv_without_bias_bn(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %scale = nn.constant dense<[2.0, 4.0]> : tensor<2xf32>
  %bias = nn.constant dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[4.0, 4.0]> : tensor<2xf32>
  %c = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y = nn.batch_norm %c, %scale, %bias, %mean, %var {epsilon = 0.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

// -----

// Not folded: the conv has a second use, or a fused activation, or a weight that is
// not a constant; a batch norm after a relu stays too.
// CHECK-LABEL: func.func @not_folded
// CHECK-COUNT-4: nn.batch_norm
// CHECK-NOT:     nn.batch_norm
func.func @not_folded(%x: tensor<1x1x4x4xf32>, %wx: tensor<2x1x1x1xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %p = nn.constant dense<[2.0, 4.0]> : tensor<2xf32>
  %c1 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y1 = nn.batch_norm %c1, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %c2 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y2 = nn.batch_norm %c2, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %c3 = nn.conv2d %x, %wx {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y3 = nn.batch_norm %c3, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.relu %c3 : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y4 = nn.batch_norm %r, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  func.return %y1, %c1, %y2, %y3, %y4 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// gemm (trans_b, alpha, beta, per-row C): B's rows (output columns) scale by s, C
// becomes beta * C * s + (bias - mean * s) with beta = 1; alpha stays.
// s = [1, 2]: C' = 2 * [[1], [3]] * [1, 2] + [-0.5, 0] = [[1.5, 4], [5.5, 12]].
// CHECK-LABEL: func.func @gemm_bn
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<{{\[\[}}1.000000e+00, 2.000000e+00], [6.000000e+00, 8.000000e+00]]> : tensor<2x2xf32>
// CHECK-NEXT:    %[[C:.*]] = nn.constant dense<{{\[\[}}1.500000e+00, 4.000000e+00], [5.500000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK-NEXT:    %[[G:.*]] = nn.gemm %a, %[[B]], %[[C]] {rkc.name = "fc", alpha = 5.000000e-01 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true}
// CHECK-NEXT:    func.return %[[G]]
func.func @gemm_bn(%a: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %b = nn.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %c = nn.constant dense<[[1.0], [3.0]]> : tensor<2x1xf32>
  %scale = nn.constant dense<[2.0, 4.0]> : tensor<2xf32>
  %bias = nn.constant dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[4.0, 4.0]> : tensor<2xf32>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc", alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = false, trans_b = true} : (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x1xf32>) -> tensor<2x2xf32>
  %y = nn.batch_norm %g, %scale, %bias, %mean, %var {epsilon = 0.0 : f32} : (tensor<2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2xf32>
  func.return %y : tensor<2x2xf32>
}

// -----

// PP-OCR det's "learnable affine block": conv -> mul by a scalar -> add a scalar folds
// into the conv: W' = 2 W, b' = 2 b + 0.5 (the conv keeps its name, the mul / add go).
// CHECK-LABEL: func.func @conv_mul_add
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<[{{\[\[\[}}2.000000e+00]]], {{\[\[\[}}-4.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<[2.500000e+00, 5.000000e-01]> : tensor<2xf32>
// CHECK-NEXT:    %{{.*}} = nn.conv2d %x, %[[W]], %[[B]] {rkc.name = "conv"
// CHECK-NEXT:    func.return
func.func @conv_mul_add(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<[[[[1.0]]], [[[-2.0]]]]> : tensor<2x1x1x1xf32>
  %b = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %two = nn.constant dense<2.0> : tensor<1xf32>
  %half = nn.constant dense<0.5> : tensor<1xf32>
  %c = nn.conv2d %x, %w, %b {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %m = nn.mul %two, %c {rkc.name = "mul"} : (tensor<1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = nn.add %m, %half {rkc.name = "add"} : (tensor<1x2x4x4xf32>, tensor<1xf32>) -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

// -----

// Per-channel constants: x / [2, 4] and [1, 1] - x (s = -1, t = 1) after convs.
// CHECK-LABEL: func.func @div_and_reversed_sub
// CHECK-NEXT:    %[[W1:.*]] = nn.constant dense<[{{\[\[\[}}5.000000e-01]]], {{\[\[\[}}2.500000e-01]]]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B1:.*]] = nn.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK-NEXT:    %[[C1:.*]] = nn.conv2d %x, %[[W1]], %[[B1]]
// CHECK-NEXT:    %[[W2:.*]] = nn.constant dense<-1.000000e+00> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B2:.*]] = nn.constant dense<1.000000e+00> : tensor<2xf32>
// CHECK-NEXT:    %[[C2:.*]] = nn.conv2d %x, %[[W2]], %[[B2]]
// CHECK-NEXT:    func.return %[[C1]], %[[C2]]
func.func @div_and_reversed_sub(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %d = nn.constant dense<[[[2.0]], [[4.0]]]> : tensor<2x1x1xf32>
  %one = nn.constant dense<1.0> : tensor<1x2x1x1xf32>
  %c1 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y1 = nn.div %c1, %d : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c2 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y2 = nn.sub %one, %c2 : (tensor<1x2x1x1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  func.return %y1, %y2 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// PP-OCR det's head: conv_transpose2d -> add bias -> batch_norm folds into the
// conv_transpose, whose output channels are axis 1 of its weight [C, O, KH, KW]:
// s = [2, 1] (scale / sqrt(var)), so W[:, 0] doubles; b' = ([1, 2] - mean) * s + bias.
// CHECK-LABEL: func.func @deconv_add_bn
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}3.000000e+00]]]]> : tensor<1x2x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<2.000000e+00> : tensor<2xf32>
// CHECK-NEXT:    %{{.*}} = nn.conv_transpose2d %x, %[[W]], %[[B]] {rkc.name = "deconv"
// CHECK-NEXT:    func.return
func.func @deconv_add_bn(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<[[[[1.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>
  %bias0 = nn.constant dense<[[[[1.0]], [[2.0]]]]> : tensor<1x2x1x1xf32>
  %scale = nn.constant dense<[4.0, 2.0]> : tensor<2xf32>
  %bias = nn.constant dense<[0.0, 1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[0.0, 1.0]> : tensor<2xf32>
  %var = nn.constant dense<[4.0, 4.0]> : tensor<2xf32>
  %d = nn.conv_transpose2d %x, %w {rkc.name = "deconv", strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, output_padding = array<i64: 1, 1>} : (tensor<1x1x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %a = nn.add %d, %bias0 : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y = nn.batch_norm %a, %scale, %bias, %mean, %var {epsilon = 0.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

// -----

// Not folded: a constant varying over space, a constant that widens the type, a
// division of a constant by the conv, and a conv with a fused activation.
// CHECK-LABEL: func.func @affine_not_folded
// CHECK:         nn.mul
// CHECK:         nn.add
// CHECK:         nn.div
// CHECK:         nn.mul
func.func @affine_not_folded(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<2x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %s = nn.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %n = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %m = nn.constant dense<2.0> : tensor<1x2x1x1xf32>
  %c1 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %y1 = nn.mul %c1, %s : (tensor<1x2x2x2xf32>, tensor<2x2xf32>) -> tensor<1x2x2x2xf32>
  %c2 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %y2 = nn.add %c2, %n : (tensor<1x2x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<2x2x2x2xf32>
  %c3 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %y3 = nn.div %m, %c3 : (tensor<1x2x1x1xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %c4 = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %y4 = nn.mul %c4, %m : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x2x2xf32>
  func.return %y1, %y2, %y3, %y4 : tensor<1x2x2x2xf32>, tensor<2x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}
