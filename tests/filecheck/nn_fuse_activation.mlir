// RUN: rkc-opt %s --split-input-file -p nn-fuse-activation | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'nn-fuse-activation{kinds=relu,clip}' | filecheck %s --check-prefix=KINDS
// RUN: not rkc-opt %s --split-input-file -p 'nn-fuse-activation{kinds=relu,swish}' 2>&1 | filecheck %s --check-prefix=BADKIND

// With kinds=relu,clip only relu and clip fuse; the swish forms are still recognised.
// BADKIND: rkc-opt: error: nn-fuse-activation: unknown activation kind 'swish'

// CHECK-LABEL: func.func @conv_relu
// CHECK-NEXT:    %w = nn.constant
// CHECK-NEXT:    %c = nn.conv2d %x, %w {rkc.name = "conv", {{.*}}activation = "relu", activation_params = array<f32>}
// CHECK-NEXT:    func.return %c
// KINDS-LABEL: func.func @conv_relu
// KINDS:         nn.conv2d {{.*}}activation = "relu"
// KINDS-NOT:     nn.relu
func.func @conv_relu(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %w = nn.constant dense<0.5> : tensor<3x2x1x1xf32>
  %c = nn.conv2d %x, %w {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x4x4xf32>
  %r = nn.relu %c {rkc.name = "relu"} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  func.return %r : tensor<1x3x4x4xf32>
}

// -----

// relu6 is clip 0..6; the bounds become the activation parameters.
// CHECK-LABEL: func.func @conv_relu6
// CHECK:         nn.conv2d {{.*}}activation = "clip", activation_params = array<f32: 0.000000e+00, 6.000000e+00>}
// CHECK-NOT:     nn.clip
// KINDS-LABEL: func.func @conv_relu6
// KINDS:         nn.conv2d {{.*}}activation = "clip"
// KINDS-NOT:     nn.clip
func.func @conv_relu6(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %w = nn.constant dense<0.5> : tensor<3x2x1x1xf32>
  %c = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x4x4xf32>
  %r = nn.clip %c {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  func.return %r : tensor<1x3x4x4xf32>
}

// -----

// CHECK-LABEL: func.func @gemm_leaky_relu
// CHECK-NEXT:    %b = nn.constant
// CHECK-NEXT:    %g = nn.gemm %a, %b {{.*}}activation = "leaky_relu", activation_params = array<f32: 1.250000e-01>}
// CHECK-NEXT:    func.return %g
// KINDS-LABEL: func.func @gemm_leaky_relu
// KINDS:         %g = nn.gemm
// KINDS-NOT:     activation
// KINDS:         nn.leaky_relu %g
func.func @gemm_leaky_relu(%a: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %b = nn.constant dense<0.5> : tensor<3x4xf32>
  %g = nn.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %r = nn.leaky_relu %g {alpha = 0.125 : f32} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %r : tensor<2x4xf32>
}

// -----

// Not fused: the conv result has a second use; the second conv already has an
// activation.
// CHECK-LABEL: func.func @not_fused
// CHECK:         %c = nn.conv2d
// CHECK-NOT:     activation
// CHECK:         nn.relu %c
// CHECK:         %d = nn.conv2d {{.*}}activation = "relu"
// CHECK:         nn.sigmoid %d
func.func @not_fused(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<0.5> : tensor<2x2x1x1xf32>
  %c = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.relu %c : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %d = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu", activation_params = array<f32>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %s = nn.sigmoid %d : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  func.return %r, %c, %s : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// conv * sigmoid(conv) is SiLU (either operand order), then fuses; likewise
// x * hard_sigmoid(x){alpha = 1/6, beta = 0.5} is hard-swish.
// CHECK-LABEL: func.func @swish_patterns
// CHECK:         %c = nn.conv2d {{.*}}activation = "silu"
// CHECK:         %d = nn.conv2d {{.*}}activation = "silu"
// CHECK:         %e = nn.conv2d {{.*}}activation = "hard_swish"
// CHECK-NOT:     nn.mul
// CHECK-NOT:     sigmoid
// CHECK:         func.return %c, %d, %e
// KINDS-LABEL: func.func @swish_patterns
// KINDS:         %c = nn.conv2d
// KINDS-NOT:     activation
// KINDS:         nn.silu %c
// KINDS:         nn.silu %d
// KINDS:         nn.hard_swish %e
// KINDS-NOT:     nn.mul
// KINDS:         func.return
func.func @swish_patterns(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = nn.constant dense<0.5> : tensor<2x2x1x1xf32>
  %c = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %cs = nn.sigmoid %c : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %cm = nn.mul %c, %cs : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %d = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %ds = nn.sigmoid %d : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %dm = nn.mul %ds, %d : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %e = nn.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %eh = nn.hard_sigmoid %e {alpha = 0.166666672 : f32, beta = 0.5 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %em = nn.mul %e, %eh : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  func.return %cm, %dm, %em : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// Without a conv, the pattern still becomes nn.silu (the mul's name moves to it).
// CHECK-LABEL: func.func @silu_alone
// CHECK-NEXT:    %y = nn.silu %x {rkc.name = "swish"}
// CHECK-NEXT:    func.return %y
func.func @silu_alone(%x: tensor<4xf32>) -> tensor<4xf32> {
  %s = nn.sigmoid %x : (tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %s, %x {rkc.name = "swish"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

// Not recognised: hard_sigmoid with the ONNX default alpha 0.2; a sigmoid with a
// second use; a sigmoid of another value.
// CHECK-LABEL: func.func @not_swish
// CHECK-COUNT-3: nn.mul
// CHECK-NOT:     nn.silu
// CHECK-NOT:     nn.hard_swish
func.func @not_swish(%x: tensor<4xf32>, %z: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %h = nn.hard_sigmoid %x {alpha = 0.2 : f32, beta = 0.5 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  %a = nn.mul %x, %h : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %s = nn.sigmoid %x : (tensor<4xf32>) -> tensor<4xf32>
  %b = nn.mul %x, %s : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = nn.sigmoid %z : (tensor<4xf32>) -> tensor<4xf32>
  %c = nn.mul %x, %t : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %a, %b, %s, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
