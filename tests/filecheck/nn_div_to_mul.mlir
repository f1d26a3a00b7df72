// RUN: rkc-opt %s --split-input-file -p nn-div-to-mul | filecheck %s

// x / 4 -> x * 0.25: a constant of the divisor's shape, the division's name.
// CHECK-LABEL: func.func @scalar
// CHECK-NEXT:    %[[R:.*]] = nn.constant dense<2.500000e-01> : tensor<1xf32> {rkc.name = "four"}
// CHECK-NEXT:    %y = nn.mul %x, %[[R]] {rkc.name = "div"} : (tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x2x3x3xf32>
// CHECK-NEXT:    func.return %y
func.func @scalar(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %four = nn.constant dense<4.0> : tensor<1xf32> {rkc.name = "four"}
  %y = nn.div %x, %four {rkc.name = "div"} : (tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x2x3x3xf32>
  func.return %y : tensor<1x2x3x3xf32>
}

// -----

// A splat divisor that broadcasts to a larger type keeps broadcasting: 1 / 3 rounds to
// float32 0.333333343.
// CHECK-LABEL: func.func @splat_broadcast
// CHECK-NEXT:    %[[R:.*]] = nn.constant dense<0.333333343> : tensor<2x1xf32>
// CHECK-NEXT:    %y = nn.mul %x, %[[R]] : (tensor<1x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
func.func @splat_broadcast(%x: tensor<1x3xf32>) -> tensor<2x3xf32> {
  %c = nn.constant dense<3.0> : tensor<2x1xf32>
  %y = nn.div %x, %c : (tensor<1x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}

// -----

// Kept: a divisor with different elements, a zero divisor, a constant numerator over a
// variable, a divisor whose reciprocal overflows float32.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-4: nn.div
// CHECK-NOT:     nn.mul
func.func @kept(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {
  %c = nn.constant dense<[2.0, 4.0]> : tensor<2xf32>
  %z = nn.constant dense<0.0> : tensor<f32>
  %t = nn.constant dense<1.0e-39> : tensor<f32>
  %a = nn.div %x, %c : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %b = nn.div %x, %z : (tensor<2xf32>, tensor<f32>) -> tensor<2xf32>
  %d = nn.div %c, %x : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %e = nn.div %x, %t : (tensor<2xf32>, tensor<f32>) -> tensor<2xf32>
  func.return %a, %b, %d, %e : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>
}
