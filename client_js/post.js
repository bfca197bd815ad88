// The page of one post: nothing live, only its times in the reader's zone and its cards'
// "Load the original".
import { allowedFrames, enhanceCards } from "./cards.js";
import { keepTimesCurrent } from "./times.js";

keepTimesCurrent(document);
enhanceCards(document, allowedFrames(document.querySelector("main")));
