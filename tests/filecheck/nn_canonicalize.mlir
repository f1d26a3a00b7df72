// RUN: rkc-opt %s --split-input-file -p nn-canonicalize | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'nn-canonicalize{max-fold-elements=2}' | filecheck %s --check-prefix=LIMIT

// Constant subgraphs fold into one constant (named after the last folded op).
// CHECK-LABEL: func.func @fold_constants
// CHECK-NEXT:    %[[C:.*]] = nn.constant dense<[5.000000e-01, 1.500000e+00, 2.500000e+00]> : tensor<3xf32> {rkc.name = "shifted"}
// CHECK-NEXT:    %[[Y:.*]] = nn.mul %x, %[[C]]
// CHECK-NEXT:    func.return %[[Y]]
// LIMIT-LABEL: func.func @fold_constants
// LIMIT:         nn.reshape
// LIMIT:         nn.sub
func.func @fold_constants(%x: tensor<3xf32>) -> tensor<3xf32> {
  %a = nn.constant dense<[[1.0, 2.0, 3.0]]> : tensor<1x3xf32>
  %r = nn.reshape %a {shape = array<i64: 3>} : (tensor<1x3xf32>) -> tensor<3xf32>
  %h = nn.constant dense<0.5> : tensor<3xf32>
  %s = nn.sub %r, %h {rkc.name = "shifted"} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %y = nn.mul %x, %s : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}

// -----

// Identity data movement disappears.
// CHECK-LABEL: func.func @identities
// CHECK-NEXT:    func.return %x
func.func @identities(%x: tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32> {
  %a = nn.reshape %x {shape = array<i64: 1, 4, 3, 3>} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %b = nn.transpose %a {perm = array<i64: 0, 1, 2, 3>} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %c = nn.slice %b {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 1, 4, 3, 3>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %d = nn.pad %c {pads = array<i64: 0, 0, 0, 0, 0, 0, 0, 0>, mode = "edge", value = 0.0 : f32} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %e = nn.cast %d {to = f32} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %f = nn.resize %e {sizes = array<i64: 1, 4, 3, 3>, scales = array<f32: 1.0, 1.0, 1.0, 1.0>, mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "round_prefer_ceil"} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %g = nn.concat %f {axis = 1 : i64} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %h = nn.split %g {axis = 2 : i64, sizes = array<i64: 3>} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  func.return %h : tensor<1x4x3x3xf32>
}

// -----

// Not identities: a real slice step, a pad that pads, a resize whose coordinate
// transform shifts by half a pixel.
// CHECK-LABEL: func.func @not_identities
// CHECK:         nn.slice
// CHECK:         nn.pad
// CHECK:         nn.resize
func.func @not_identities(%x: tensor<1x4x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x4x4x3xf32>, tensor<1x4x3x3xf32>) {
  %a = nn.slice %x {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 1, 4, 3, 3>, steps = array<i64: 1, 2, 1, 1>} : (tensor<1x4x3x3xf32>) -> tensor<1x2x3x3xf32>
  %b = nn.pad %x {pads = array<i64: 0, 0, 1, 0, 0, 0, 0, 0>, mode = "constant", value = 0.0 : f32} : (tensor<1x4x3x3xf32>) -> tensor<1x4x4x3xf32>
  %c = nn.resize %x {sizes = array<i64: 1, 4, 3, 3>, scales = array<f32: 1.0, 1.0, 1.0, 1.0>, mode = "nearest", coordinate_transformation_mode = "tf_half_pixel_for_nearest", nearest_mode = "round_prefer_ceil"} : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  func.return %a, %b, %c : tensor<1x2x3x3xf32>, tensor<1x4x4x3xf32>, tensor<1x4x3x3xf32>
}

// -----

// x*1, 1*x, x+0, x-0, x/1 vanish when the result has x's type; 0-x stays, and so
// does a multiplication by ones that broadcasts x to a bigger shape.
// CHECK-LABEL: func.func @neutral_operands
// CHECK-DAG:     %[[ZERO:.*]] = nn.constant dense<0.000000e+00> : tensor<1xf32>
// CHECK-DAG:     %[[WIDE:.*]] = nn.constant dense<1.000000e+00> : tensor<1x1x2x2xf32>
// CHECK:         %[[E:.*]] = nn.mul %x, %[[WIDE]]
// CHECK-NEXT:    %[[F:.*]] = nn.sub %[[ZERO]], %x
// CHECK-NEXT:    func.return %x, %[[E]], %[[F]]
func.func @neutral_operands(%x: tensor<1x4x1x1xf32>) -> (tensor<1x4x1x1xf32>, tensor<1x4x2x2xf32>, tensor<1x4x1x1xf32>) {
  %one = nn.constant dense<1.0> : tensor<4x1x1xf32>
  %zero = nn.constant dense<0.0> : tensor<1xf32>
  %wide = nn.constant dense<1.0> : tensor<1x1x2x2xf32>
  %a = nn.mul %one, %x : (tensor<4x1x1xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
  %b = nn.add %a, %zero : (tensor<1x4x1x1xf32>, tensor<1xf32>) -> tensor<1x4x1x1xf32>
  %c = nn.sub %b, %zero : (tensor<1x4x1x1xf32>, tensor<1xf32>) -> tensor<1x4x1x1xf32>
  %d = nn.div %c, %one : (tensor<1x4x1x1xf32>, tensor<4x1x1xf32>) -> tensor<1x4x1x1xf32>
  %e = nn.mul %d, %wide : (tensor<1x4x1x1xf32>, tensor<1x1x2x2xf32>) -> tensor<1x4x2x2xf32>
  %f = nn.sub %zero, %d : (tensor<1xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x1x1xf32>
  func.return %d, %e, %f : tensor<1x4x1x1xf32>, tensor<1x4x2x2xf32>, tensor<1x4x1x1xf32>
}

// -----

// A constant that is not all ones is no identity.
// CHECK-LABEL: func.func @not_all_ones
// CHECK:         nn.mul %x
func.func @not_all_ones(%x: tensor<2xf32>) -> tensor<2xf32> {
  %c = nn.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %y = nn.mul %x, %c : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}

// -----

// reshape(reshape(x)) is one reshape; transpose pairs compose or cancel; the
// other ops are dead and disappear.
// CHECK-LABEL: func.func @chains
// CHECK-NEXT:    %[[R:.*]] = nn.reshape %x {rkc.name = "flat", shape = array<i64: 24>}
// CHECK-NEXT:    %[[T:.*]] = nn.transpose %x {perm = array<i64: 1, 2, 0>}
// CHECK-NEXT:    func.return %[[R]], %x, %[[T]]
func.func @chains(%x: tensor<2x3x4xf32>) -> (tensor<24xf32>, tensor<2x3x4xf32>, tensor<3x4x2xf32>) {
  %a = nn.reshape %x {shape = array<i64: 6, 4>} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %b = nn.reshape %a {shape = array<i64: 24>, rkc.name = "flat"} : (tensor<6x4xf32>) -> tensor<24xf32>
  %t = nn.transpose %x {perm = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %u = nn.transpose %t {perm = array<i64: 1, 0, 2>} : (tensor<3x2x4xf32>) -> tensor<2x3x4xf32>
  %v = nn.transpose %t {perm = array<i64: 0, 2, 1>} : (tensor<3x2x4xf32>) -> tensor<3x4x2xf32>
  %dead = nn.sigmoid %x : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  func.return %b, %u, %v : tensor<24xf32>, tensor<2x3x4xf32>, tensor<3x4x2xf32>
}

// -----

// A reshape chain back to the source shape is the source itself.
// CHECK-LABEL: func.func @reshape_round_trip
// CHECK-NEXT:    func.return %x
func.func @reshape_round_trip(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = nn.reshape %x {shape = array<i64: 6>} : (tensor<2x3xf32>) -> tensor<6xf32>
  %b = nn.reshape %a {shape = array<i64: 2, 3>} : (tensor<6xf32>) -> tensor<2x3xf32>
  func.return %b : tensor<2x3xf32>
}
