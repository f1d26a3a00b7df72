// RUN: rkc-opt %s --split-input-file -p nn-quantize | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'nn-quantize{method=layer}' | filecheck %s --check-prefix=LAYER
// RUN: rkc-opt %s --split-input-file -p 'nn-quantize{dtype=fp16}' | filecheck %s --check-prefix=FP16

// Ranges (rkc.range) are written by hand, as calibration would write them.
// x in [-1, 1]: scale 2/255, zero point round(-128 + 127.5) = 0 (half to even).
// Weights per output channel: max|w| / 127 (1/127 and 0.25/127), 0.5 / (1/127) = 63.5
// rounds to 64; biases i32 at s_x * s_w[o]: 0.1 / 6.1757e-05 -> 1619. The relu stays
// fused; the conv's range [0, 3] gives scale 3/255 and zero point -128.

// CHECK-LABEL: func.func @conv_relu
// CHECK-NEXT:    %0 = quant.quantize %x : tensor<1x2x4x4xf32> -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.00784313725490196:0>>
// CHECK-NEXT:    %1 = nn.constant dense<{{\[\[\[\[}}64]], {{\[\[}}-127]]], {{\[\[\[}}127]], {{\[\[}}64]]]]> : tensor<2x2x1x1xi8> as tensor<2x2x1x1x!quant.uniform<i8:f32:0, {0.007874015748031496:0, 0.001968503937007874:0}>> {rkc.name = "w"}
// CHECK-NEXT:    %2 = nn.constant dense<[1619, -12954]> : tensor<2xi32> as tensor<2x!quant.uniform<i32:f32:0, {6.175698625907056e-05:0, 1.543924656476764e-05:0}>> {rkc.name = "b"}
// CHECK-NEXT:    %c = nn.conv2d %0, %1, %2 {rkc.name = "conv", {{.*}}activation = "relu"{{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.011764705882352941:-128>>
// CHECK-NEXT:    %3 = quant.dequantize %c : {{.*}} -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    func.return %3 : tensor<1x2x4x4xf32>

// One scale for the whole weight (max|w| = 1), the bias still per channel.
// LAYER-LABEL: func.func @conv_relu
// LAYER:         nn.constant dense<{{\[\[\[\[}}64]], {{\[\[}}-127]]], {{\[\[\[}}32]], {{\[\[}}16]]]]> : tensor<2x2x1x1xi8> as tensor<2x2x1x1x!quant.uniform<i8:f32, 0.007874015748031496:0>>
// LAYER-NEXT:    nn.constant dense<[1619, -3239]> : tensor<2xi32> as tensor<2x!quant.uniform<i32:f32:0, {6.175698625907056e-05:0, 6.175698625907056e-05:0}>>

// fp16: a cast after the input, f16 constants and ops, a cast before the return.
// FP16-LABEL: func.func @conv_relu
// FP16-NEXT:    %0 = nn.cast %x {to = f16} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf16>
// FP16-NEXT:    %1 = nn.constant dense<{{.*}}> : tensor<2x2x1x1xf16> {rkc.name = "w"}
// FP16-NEXT:    %2 = nn.constant dense<{{.*}}> : tensor<2xf16> {rkc.name = "b"}
// FP16-NEXT:    %c = nn.conv2d %0, %1, %2 {{.*}} -> tensor<1x2x4x4xf16>
// FP16-NEXT:    %3 = nn.cast %c {to = f32} : (tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf32>
// FP16-NEXT:    func.return %3
func.func @conv_relu(%x: tensor<1x2x4x4xf32> {rkc.name = "x", rkc.range = array<f32: -1.0, 1.0>}) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[0.125]]]]> : tensor<2x2x1x1xf32> {rkc.name = "w"}
  %b = nn.constant dense<[0.1, -0.2]> : tensor<2xf32> {rkc.name = "b"}
  %c = nn.conv2d %x, %w, %b {rkc.name = "conv", rkc.range = array<f32: 0.0, 3.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  func.return %c : tensor<1x2x4x4xf32>
}

// -----

// softmax has no integer semantics: the conv result is dequantized once for both
// float users (softmax and the return), the softmax result quantized for the add.
// The reshape follows its int8 input and keeps its parameters.
// CHECK-LABEL: func.func @float_island
// CHECK:         %c = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.01568627450980392:-128>>
// CHECK-NEXT:    %[[D:.*]] = quant.dequantize %c
// CHECK-NEXT:    %s = nn.softmax %[[D]] {rkc.name = "sm"{{.*}} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    %[[Q:.*]] = quant.quantize %s : tensor<1x2x4x4xf32> -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.00392156862745098:-128>>
// CHECK-NEXT:    %a = nn.add %c, %[[Q]] {rkc.name = "add"{{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.0196078431372549:-128>>
// CHECK-NEXT:    %r = nn.reshape %a {{.*}} -> tensor<1x32x!quant.uniform<i8:f32, 0.0196078431372549:-128>>
// CHECK-NEXT:    %[[R:.*]] = quant.dequantize %r
// CHECK-NEXT:    func.return %[[R]], %[[D]]
// CHECK-NOT:     quant.
func.func @float_island(%x: tensor<1x2x4x4xf32> {rkc.name = "x", rkc.range = array<f32: -1.0, 1.0>}) -> (tensor<1x32xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[0.125]]]]> : tensor<2x2x1x1xf32>
  %c = nn.conv2d %x, %w {rkc.name = "conv", rkc.range = array<f32: 0.0, 4.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %s = nn.softmax %c {rkc.name = "sm", rkc.range = array<f32: 0.0, 1.0>, axis = 1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %a = nn.add %c, %s {rkc.name = "add", rkc.range = array<f32: 0.0, 5.0>} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.reshape %a {rkc.name = "flat", shape = array<i64: 1, 32>} : (tensor<1x2x4x4xf32>) -> tensor<1x32xf32>
  func.return %r, %c : tensor<1x32xf32>, tensor<1x2x4x4xf32>
}

// -----

// rkc.precision = "fp16" keeps the sigmoid in f16 inside the int8 graph: dequantize,
// cast to f16, sigmoid, cast to f32, quantize for the int8 mul. The conv result is
// dequantized once (for the cast and for nothing else).
// CHECK-LABEL: func.func @hybrid
// CHECK:         %c = nn.conv2d
// CHECK-NEXT:    %[[D:.*]] = quant.dequantize %c
// CHECK-NEXT:    %[[H:.*]] = nn.cast %[[D]] {to = f16} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf16>
// CHECK-NEXT:    %g = nn.sigmoid %[[H]] {rkc.name = "gate", rkc.precision = "fp16"{{.*}} : (tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16>
// CHECK-NEXT:    %[[F:.*]] = nn.cast %g {to = f32}
// CHECK-NEXT:    %[[Q:.*]] = quant.quantize %[[F]] : tensor<1x2x4x4xf32> -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.00392156862745098:-128>>
// CHECK-NEXT:    %m = nn.mul %c, %[[Q]] {rkc.name = "mul"{{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.011764705882352941:-128>>
// CHECK-NEXT:    quant.dequantize %m

// In fp16 mode everything is f16 and rkc.precision does not matter.
// FP16-LABEL: func.func @hybrid
// FP16:         %g = nn.sigmoid %c {{.*}} : (tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16>
// FP16-NEXT:    %m = nn.mul %c, %g {{.*}} -> tensor<1x2x4x4xf16>
// FP16-NOT:     quant.
func.func @hybrid(%x: tensor<1x2x4x4xf32> {rkc.name = "x", rkc.range = array<f32: -1.0, 1.0>}) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[0.125]]]]> : tensor<2x2x1x1xf32>
  %c = nn.conv2d %x, %w {rkc.name = "conv", rkc.range = array<f32: 0.0, 3.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %g = nn.sigmoid %c {rkc.name = "gate", rkc.precision = "fp16", rkc.range = array<f32: 0.5, 1.0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %m = nn.mul %c, %g {rkc.name = "mul", rkc.range = array<f32: 0.0, 3.0>} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  func.return %m : tensor<1x2x4x4xf32>
}

// -----

// The input normalisation (x - mean) / std stays float: the sub is isolated between
// the float argument and the float div, so int8 would only add roundings. The
// normalised input is quantized once, for the conv.
// CHECK-LABEL: func.func @normalised_input
// CHECK:         %xm = nn.sub %x, %{{.*}} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    %n = nn.div %xm, %{{.*}} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    %[[Q:.*]] = quant.quantize %n : tensor<1x2x4x4xf32> -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.00784313725490196:0>>
// CHECK:         nn.conv2d %[[Q]]
func.func @normalised_input(%x: tensor<1x2x4x4xf32> {rkc.name = "x", rkc.range = array<f32: 0.0, 255.0>}) -> tensor<1x2x4x4xf32> {
  %mean = nn.constant dense<127.5> : tensor<1x2x1x1xf32>
  %std = nn.constant dense<127.5> : tensor<1x2x1x1xf32>
  %xm = nn.sub %x, %mean {rkc.name = "x_normalize_sub", rkc.range = array<f32: -127.5, 127.5>} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %n = nn.div %xm, %std {rkc.name = "x_normalize", rkc.range = array<f32: -1.0, 1.0>} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[0.125]]]]> : tensor<2x2x1x1xf32>
  %c = nn.conv2d %n, %w {rkc.name = "conv", rkc.range = array<f32: 0.0, 3.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  func.return %c : tensor<1x2x4x4xf32>
}

// -----

// gemm: alpha (0.5) folded into B, beta (2) into C; B per column (axis 1), C i32.
// CHECK-LABEL: func.func @gemm
// CHECK:         nn.constant {{.*}} : tensor<3x2xi8> as tensor<3x2x!quant.uniform<i8:f32:1, {{.*}}>>
// CHECK-NEXT:    nn.constant dense<{{.*}}> : tensor<2xi32> as tensor<2x!quant.uniform<i32:f32:0, {{.*}}>>
// CHECK-NEXT:    nn.gemm {{.*}}alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32
func.func @gemm(%a: tensor<4x3xf32> {rkc.name = "a", rkc.range = array<f32: -2.0, 2.0>}) -> tensor<4x2xf32> {
  %b = nn.constant dense<[[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]]> : tensor<3x2xf32>
  %c = nn.constant dense<[1.0, -1.0]> : tensor<2xf32>
  %g = nn.gemm %a, %b, %c {rkc.name = "fc", rkc.range = array<f32: -6.0, 6.0>, alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = false, trans_b = false} : (tensor<4x3xf32>, tensor<3x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  func.return %g : tensor<4x2xf32>
}

// -----

// A concat's inputs get the concat's parameters (range [-2, 4]: scale 6/255, zero point
// -43), so that it stays address offsets: the single-use conv "a" computes in them
// directly, "c" too through the single-use max pool that follows it; "b" is also
// returned, keeps its own parameters and is requantized for the concat.
// CHECK-LABEL: func.func @concat_shares
// CHECK:         %a = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.023529411764705882:-43>>
// CHECK:         %b = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.00784313725490196:0>>
// CHECK:         %[[R:.*]] = quant.requantize %b : {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.023529411764705882:-43>>
// CHECK:         %c = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.023529411764705882:-43>>
// CHECK-NEXT:    %p = nn.max_pool2d %c {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.023529411764705882:-43>>
// CHECK-NEXT:    %y = nn.concat %a, %[[R]], %p {{.*}} -> tensor<1x6x4x4x!quant.uniform<i8:f32, 0.023529411764705882:-43>>
// CHECK-NOT:     quant.requantize
func.func @concat_shares(%x: tensor<1x2x4x4xf32> {rkc.name = "x", rkc.range = array<f32: -1.0, 1.0>}) -> (tensor<1x6x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[0.125]]]]> : tensor<2x2x1x1xf32>
  %a = nn.conv2d %x, %w {rkc.name = "a", rkc.range = array<f32: 0.0, 2.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %b = nn.conv2d %x, %w {rkc.name = "b", rkc.range = array<f32: -1.0, 1.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c = nn.conv2d %x, %w {rkc.name = "c", rkc.range = array<f32: -2.0, 1.0>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %p = nn.max_pool2d %c {rkc.name = "pool", kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = nn.concat %a, %b, %p {rkc.name = "cat", rkc.range = array<f32: -2.0, 4.0>, axis = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x6x4x4xf32>
  func.return %y, %b : tensor<1x6x4x4xf32>, tensor<1x2x4x4xf32>
}
