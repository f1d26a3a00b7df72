// RUN: rkc-opt %s --split-input-file -p nn-match-activations | filecheck %s

// PP-OCR's written-out hard-swish, x * clip(x + 3, 0, 6) / 6, is one op named after
// the division; the add, clip, mul and the constants are gone.
// CHECK-LABEL: func.func @hard_swish_div
// CHECK-NEXT:    %y = nn.hard_swish %x {rkc.name = "p2o.Div.0"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:    func.return %y
func.func @hard_swish_div(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %three = nn.constant dense<3.0> : tensor<f32>
  %a = nn.add %x, %three {rkc.name = "p2o.Add.4"} : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %c = nn.clip %a {rkc.name = "p2o.Clip.0", min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %m = nn.mul %x, %c {rkc.name = "p2o.Mul.2"} : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %six = nn.constant dense<6.0> : tensor<f32>
  %y = nn.div %m, %six {rkc.name = "p2o.Div.0"} : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

// x * relu6(x + 3) * (1/6), the multiplier a float32 1/6 on the left.
// CHECK-LABEL: func.func @hard_swish_mul
// CHECK-NEXT:    %y = nn.hard_swish %x : (tensor<1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    func.return %y
func.func @hard_swish_mul(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %three = nn.constant dense<3.0> : tensor<1xf32>
  %a = nn.add %three, %x : (tensor<1xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %c = nn.clip %a {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %m = nn.mul %c, %x : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %sixth = nn.constant dense<0.166666672> : tensor<f32>
  %y = nn.mul %sixth, %m : (tensor<f32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  func.return %y : tensor<1x4xf32>
}

// -----

// A gate alone, clip(x + 1, 0, 2) / 2, is hard_sigmoid(alpha = 1/2, beta = 1/2); times x
// it stays a multiplication (hard_swish's gate is 1/6, 1/2 only).
// CHECK-LABEL: func.func @hard_sigmoid_gate
// CHECK-NEXT:    %g = nn.hard_sigmoid %x {alpha = 5.000000e-01 : f32, beta = 5.000000e-01 : f32}
// CHECK-NEXT:    %y = nn.mul %x, %g
// CHECK-NEXT:    func.return %y
func.func @hard_sigmoid_gate(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %one = nn.constant dense<1.0> : tensor<f32>
  %two = nn.constant dense<2.0> : tensor<f32>
  %a = nn.add %x, %one : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %c = nn.clip %a {min = 0.0 : f32, max = 2.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %g = nn.div %c, %two : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %y = nn.mul %x, %g : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  func.return %y : tensor<1x4xf32>
}

// -----

// x * sigmoid(x) is SiLU (nn-fuse-activation's exact recognition, reused).
// CHECK-LABEL: func.func @silu
// CHECK-NEXT:    %y = nn.silu %x {rkc.name = "swish"}
// CHECK-NEXT:    func.return %y
func.func @silu(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %s = nn.sigmoid %x : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = nn.mul %s, %x {rkc.name = "swish"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  func.return %y : tensor<1x4xf32>
}

// -----

// Not matched: the clip's result is also returned, and clip(x + 3, 0, 6) / 3 is not a
// hard sigmoid (its maximum is 2).
// CHECK-LABEL: func.func @not_matched
// CHECK-NOT:     nn.hard_swish
// CHECK-NOT:     nn.hard_sigmoid
// CHECK-COUNT-2: nn.div
func.func @not_matched(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>) {
  %three = nn.constant dense<3.0> : tensor<f32>
  %six = nn.constant dense<6.0> : tensor<f32>
  %a = nn.add %x, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %c = nn.clip %a {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %m = nn.mul %x, %c : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = nn.div %m, %six : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %a2 = nn.add %x, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  %c2 = nn.clip %a2 {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %z = nn.div %c2, %three : (tensor<1x4xf32>, tensor<f32>) -> tensor<1x4xf32>
  func.return %y, %c, %z : tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>
}
