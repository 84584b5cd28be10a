/*
 * bookrec/bookrec.h: the umbrella header of the bookrec library.
 * Include this one; it pulls in every public module header.
 */
#ifndef BOOKREC_BOOKREC_H
#define BOOKREC_BOOKREC_H

#include "bookrec/core.h"
#include "bookrec/data.h"
#include "bookrec/npy.h"
#include "bookrec/eval.h"
#include "bookrec/encoder.h"
#include "bookrec/text.h"
#include "bookrec/bert.h"
#include "bookrec/content.h"
#include "bookrec/index.h"
#include "bookrec/sparse.h"
#include "bookrec/collab.h"
#include "bookrec/events.h"
#include "bookrec/store.h"
#include "bookrec/hybrid.h"
#include "bookrec/train.h"
#include "bookrec/model.h"
#include "bookrec/serve.h"

#endif /* BOOKREC_BOOKREC_H */
